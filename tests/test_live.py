"""The Foxglove live view: a WebSocket client (``websockets``, Foxglove's protocol)
connects to the server, subscribes to ``/scene`` and ``/episode``, and decodes what
it receives with the schema the server advertised (protobuf file descriptor set)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading

import numpy as np
import websockets

from pe_bringup.live import EVENTS_TOPIC, SCENE_TOPIC, LiveView
from pe_policy.replay import replay_episode


def message_class(channel: dict):
    """The protobuf message class of an advertised channel."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


async def receive(port: int, started: threading.Event, wanted: int) -> tuple[list, list]:
    scenes, events = [], []
    async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"]) as ws:
        channels = {}
        while len(channels) < 2:
            data = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if data["op"] == "advertise":
                channels.update({c["topic"]: c for c in data["channels"]})
        subscriptions = {1: SCENE_TOPIC, 2: EVENTS_TOPIC}
        await ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": sid, "channelId": channels[topic]["id"]} for sid, topic in subscriptions.items()]}))
        await asyncio.sleep(0.5)
        started.set()
        scene_type = message_class(channels[SCENE_TOPIC])
        while len(scenes) < wanted or not events or events[-1]["event"] != "end":
            frame = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(frame, str):
                continue
            opcode, sid, log_time = struct.unpack_from("<BIQ", frame)
            assert opcode == 1
            payload = frame[13:]
            if subscriptions[sid] == SCENE_TOPIC:
                scenes.append((log_time, scene_type.FromString(payload)))
            else:
                events.append(json.loads(payload))
    return scenes, events


def test_a_client_receives_the_scene_and_events():
    log = replay_episode("bench_1v1_flee", {"pursuer": "pursuer_bench_flee", "evader": "scripted:flee"},
                         seed=1_000_000_005, filter="all")
    view = LiveView(port=0)
    started = threading.Event()
    stop = threading.Event()

    def serve():
        started.wait(20)
        view.play(log, speed=50.0, stop=stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        scenes, events = asyncio.run(receive(view.port, started, log.steps + 1))
    finally:
        stop.set()
        thread.join(10)
        view.close()
    assert len(scenes) == log.steps + 1
    stamps = [t for t, _ in scenes]
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] == 50_000_000
    last = scenes[-1][1]
    entities = {e.id: e for e in last.entities}
    assert {"arena", "obstacles", "robot/pursuer", "robot/evader"} <= set(entities)
    assert len(entities["obstacles"].cylinders) == len(log.obstacles)
    pursuer = entities["robot/pursuer"].cylinders[0].pose.position
    np.testing.assert_allclose([pursuer.x, pursuer.y], log.pose[-1, 0, :2])
    rings = sum(len(s.entities[2].cylinders) == 3 for _, s in scenes[1:])    # body, capture radius, ring
    assert rings == int(log.intervened[:, 0].sum()) > 0
    assert events[0]["event"] == "start" and events[-1]["outcome"] == "capture"


class _RecordingChannel:
    """Stands in for a Foxglove channel: the test reads what was logged, no server needed."""

    def __init__(self) -> None:
        self.logged: list[int] = []

    def log(self, message: object, log_time: int | None = None) -> None:
        self.logged.append(log_time)


def test_a_resent_state_adds_no_scene():
    """Lockstep resends a state whose commands are late (same stamp, same poses): the
    graph view sends each stamp's scene once, in the order the states completed."""
    from types import SimpleNamespace

    from pe_bringup.live_graph import GraphScene
    from pe_sim.scenario import load_scenario

    view = SimpleNamespace(scene=_RecordingChannel(), events=_RecordingChannel())
    scene = GraphScene(load_scenario("seed_1v1_2obs"), view)
    for stamp in (100, 100, 200, 100, 200, 300):       # 100 and 200 resent
        for robot in (0, 1):
            scene.on_odometry(robot, stamp, 0.0, 0.0, 0.0)
    scene.on_odometry(0, 400, 0.0, 0.0, 0.0)           # incomplete: no scene
    scene.flush()
    assert view.scene.logged == [100, 200, 300]
    assert scene.scenes_sent == 3
