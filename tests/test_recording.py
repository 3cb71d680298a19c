"""Recordings (rosbag2 folders, MCAP storage) read back with the `rosbags` library and
with the plain `mcap` reader (+ mcap-ros2-support's decoder), checked against the
episode records of the evaluation and the replayed trajectory."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import yaml

from pe_bringup.recording import main, record_results, write_episode_bag
from pe_policy.evaluate import evaluate
from pe_policy.replay import check_replay, replay_record
from pe_sim.metrics import write_jsonl

SEED = 1_000_000_000
EPISODES = 6


@pytest.fixture(scope="module")
def evaluation():
    """Learned pursuer (unconstrained PPO) with the post-hoc filter, both robots filtered."""
    return evaluate("bench_1v1_flee", {"pursuer": "pursuer_bench_flee", "evader": "scripted:flee"},
                    EPISODES, seed=SEED, filter="all")


@pytest.fixture(scope="module")
def recorded(evaluation, tmp_path_factory):
    """The evaluation's episode with the most pursuer corrections, replayed and recorded."""
    record = max(evaluation.records, key=lambda r: r.robots[0].interventions)
    log = replay_record(record)
    assert check_replay(log, record) == []
    bag = write_episode_bag(log, tmp_path_factory.mktemp("bags") / "episode")
    return record, log, bag


def test_rosbag2_folder_layout(recorded):
    _, log, bag = recorded
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert [p for p in meta["relative_file_paths"]] == ["episode.mcap"] and (bag / "episode.mcap").is_file()
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts["/pursuer/odom"] == log.steps + 1 and counts["/obstacles"] == 1


def test_read_back_with_rosbags(recorded):
    from rosbags.highlevel import AnyReader

    record, log, bag = recorded
    counts: Counter[str] = Counter()
    odom_xy, commands, warnings, events = [], [], 0, []
    with AnyReader([bag]) as reader:
        for connection, stamp, raw in reader.messages():
            counts[connection.topic] += 1
            message = reader.deserialize(raw, connection.msgtype)
            if connection.topic == "/pursuer/odom":
                assert stamp == 1_000_000_000 + len(odom_xy) * 50_000_000
                odom_xy.append((message.pose.pose.position.x, message.pose.pose.position.y))
            elif connection.topic == "/pursuer/cmd_vel":
                commands.append((message.twist.linear.x, message.twist.angular.z))
            elif connection.topic == "/pursuer/filter_status":
                warnings += message.status[0].level == 1
            elif connection.topic == "/episode":
                events.append(json.loads(message.data))
    steps = record.steps
    assert counts["/pursuer/odom"] == counts["/evader/odom"] == steps + 1
    assert counts["/pursuer/cmd_vel"] == counts["/pursuer/cmd_vel_nominal"] == steps
    assert counts["/pursuer/filter_status"] == counts["/evader/filter_status"] == steps
    assert counts["/robots"] == steps + 1
    # Values against the evaluation's record and the replayed trajectory.
    assert warnings == record.robots[0].interventions > 0
    np.testing.assert_array_equal(np.array(odom_xy), log.pose[:, 0, :2])
    np.testing.assert_array_equal(np.array(commands), log.command[:, 0])
    assert events[0]["event"] == "start" and events[0]["seed"] == record.seed
    assert events[-1]["outcome"] == ("capture" if record.captured else "timeout")
    assert events[-1]["steps"] == record.steps
    violations = [e for e in events if e["event"] == "violation"]
    assert len(violations) == sum(1 for k in range(steps) if log.violation[k].any())


def test_read_back_with_the_plain_mcap_reader(recorded):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    record, log, bag = recorded
    counts: Counter[str] = Counter()
    nominal = []
    with (bag / "episode.mcap").open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        schemas = {s.name for s in summary.schemas.values()}
        assert {"nav_msgs/msg/Odometry", "visualization_msgs/msg/MarkerArray"} <= schemas
        for _, channel, message, decoded in reader.iter_decoded_messages():
            counts[channel.topic] += 1
            if channel.topic == "/pursuer/cmd_vel_nominal":
                nominal.append((decoded.twist.linear.x, decoded.twist.angular.z))
                assert message.log_time == 1_000_000_000 + (len(nominal) - 1) * 50_000_000
            if channel.topic == "/obstacles":
                cylinders = [m for m in decoded.markers if m.ns == "obstacles"]
                assert [2 * c.pose.position.x for c in cylinders] == [2 * x for x in log.obstacles[:, 0]]
                assert [c.scale.x / 2 for c in cylinders] == list(log.obstacles[:, 2])
    assert counts["/pursuer/odom"] == record.steps + 1
    assert sum(counts.values()) == summary.statistics.message_count
    np.testing.assert_array_equal(np.array(nominal), log.nominal_command[:, 0])
    # The filter acted in this episode: nominal and applied commands differ somewhere.
    assert not np.array_equal(log.nominal_command[:, 0], log.command[:, 0])


def test_record_results_of_an_evaluation_folder(evaluation, tmp_path):
    write_jsonl(evaluation.records, tmp_path / "episodes.jsonl")
    bags = record_results(tmp_path, limit=2)
    assert [b.name for b in bags] == [f"bench_1v1_flee_seed{SEED}", f"bench_1v1_flee_seed{SEED + 1}"]
    assert all((b / "metadata.yaml").is_file() for b in bags)


def test_cli_records_a_scripted_episode_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "bag"
    args = ["--scenario", "seed_1v1_2obs", "--seed", "3", "--pursuer", "proportional_navigation",
            "--evader", "random", "--filter", "all", "-o", str(out)]
    assert main(args) == 0 and (out / "metadata.yaml").is_file()
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err


def test_shipped_viewer_configs_name_recorded_topics(recorded):
    """The Foxglove layout and the RViz config parse and only name topics a recording has."""
    from pe_bringup.recording import viewer_config

    _, _, bag = recorded
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    topics = {t["topic_metadata"]["name"] for t in meta["topics_with_message_count"]}

    layout = json.loads(viewer_config("pe_stack.foxglove.json").read_text())
    panels = layout["configById"]
    used = set(panels["3D!scene"]["topics"])
    for panel in panels.values():
        for path in panel.get("paths", []):
            used.add(path["value"].split(".")[0])
        if "topicPath" in panel:
            used.add(panel["topicPath"].split(".")[0])
    assert used <= topics and {"/obstacles", "/robots", "/pursuer/cmd_vel"} <= used

    def leaves(node):
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)

    rviz = yaml.safe_load(viewer_config("pe_stack.rviz").read_text())["Visualization Manager"]
    assert rviz["Global Options"]["Fixed Frame"] == "world"
    rviz_topics = {d["Topic"]["Value"] for d in rviz["Displays"] if "Topic" in d}
    assert rviz_topics <= topics and {"/obstacles", "/robots"} <= rviz_topics
