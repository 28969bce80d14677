"""`lrsweep launch cluster=emr` against moto's S3 and EMR over HTTP: what is staged, what is requested, what is
printed, and what a dry run leaves alone.

moto keeps no auto-termination policy, so the test reads it from the RunJobFlow body moto received (its request
recorder). moto's steps never complete: no test waits for one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from lrsweep.launch import launch
from lrsweep.launch.staging import INSTALL_SCRIPT
from lrsweep.launch.step import config_from_yaml
from tests.launch.fakes import BUCKET, EMR, MLFLOW_PASSWORD, S3_URI, Moto, leaks

GROUPS = (
    "cluster.primary_instance_type=m5.2xlarge",
    "cluster.core_nodes=3",
    "cluster.task_nodes=2",
    "cluster.task_instance_type=r5.xlarge",
    "cluster.idle_timeout_minutes=30",
)


def _printed_request(lines: list[str]) -> dict:
    """The JSON request a dry run printed (the one line that parses as a JSON object)."""
    found = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    assert len(found) == 1, lines
    return found[0]


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text and "Traceback" not in text
    assert not leaks(text)
    return text


def test_a_transient_cluster_gets_the_instance_groups_bootstrap_step_and_auto_termination(aws: Moto, compose):
    cfg = compose(*EMR, *GROUPS)
    printed: list[str] = []
    launched = launch(cfg, echo=printed.append)

    emr = aws.client("emr")
    cluster = emr.describe_cluster(ClusterId=launched.cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert "Spark" in {a["Name"] for a in cluster["Applications"]}
    assert cluster["AutoTerminate"] is True  # KeepJobFlowAliveWhenNoSteps=False: it ends after its step
    assert cluster["LogUri"] == f"{S3_URI}/logs"
    assert cluster["ServiceRole"] == "EMR_DefaultRole"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "EMR_EC2_DefaultRole"
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert tags["lrsweep:version"] == "0.1.0" and tags["lrsweep:plan-run"] == "plan123"
    assert tags["lrsweep:study"].startswith("lrsweep-telco_churn-spark-")

    groups = emr.list_instance_groups(ClusterId=launched.cluster_id)["InstanceGroups"]
    shape = {(g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups}
    assert shape == {("MASTER", "m5.2xlarge", 1), ("CORE", "m5.xlarge", 3), ("TASK", "r5.xlarge", 2)}

    wheel_uri, config_uri = launched.staged["wheel"], launched.staged["config"]
    (action,) = emr.list_bootstrap_actions(ClusterId=launched.cluster_id)["BootstrapActions"]
    assert action["ScriptPath"] == launched.staged["bootstrap"]
    assert action["Args"] == [wheel_uri, "python3.11", "spark,s3"]

    (step,) = emr.list_steps(ClusterId=launched.cluster_id)["Steps"]
    assert step["Id"] == launched.step_id
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == ["python3.11", "-m", "lrsweep.launch.step", config_uri]

    (sent,) = aws.emr_calls("RunJobFlow")  # as moto received it: the policy moto does not keep
    assert sent["AutoTerminationPolicy"] == {"IdleTimeout": 30 * 60}
    assert sent["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert sent == launched.request

    # the ids and where to watch, printed, the password masked
    assert printed == launched.lines
    text = "\n".join(printed)
    for expected in (launched.cluster_id, launched.step_id, wheel_uri, config_uri, "plan123", "lrsweep-telco_churn"):
        assert expected in text
    assert f"{S3_URI}/logs/{launched.cluster_id}/steps/{launched.step_id}/" in text
    assert "https://lead:***@mlflow.example.com" in text
    assert not leaks(text, json.dumps(launched.request))


def test_the_bucket_holds_the_wheel_the_config_and_the_bootstrap_script(aws: Moto, compose):
    cfg = compose(*EMR)
    launched = launch(cfg, echo=lambda _: None)

    objects = aws.objects()
    prefix = f"sweeps/{launched.launch_id}/"
    assert set(objects) == {prefix + "lrsweep-0.1.0-py3-none-any.whl", prefix + "config.yaml", prefix + "install.sh"}
    assert {f"s3://{BUCKET}/{k}" for k in objects} == set(launched.staged.values())

    wheel = zipfile.ZipFile(io.BytesIO(objects[prefix + "lrsweep-0.1.0-py3-none-any.whl"]))
    names = set(wheel.namelist())
    assert {"lrsweep/launch/step.py", "lrsweep/conf/config.yaml", "lrsweep/conf/cluster/emr.yaml"} <= names
    assert "lrsweep/datasets/telco_churn.csv.gz" in names

    script = objects[prefix + "install.sh"].decode()
    assert script == INSTALL_SCRIPT
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0

    # the staged config is the typed config, its one credential masked
    staged = config_from_yaml(objects[prefix + "config.yaml"].decode())
    assert staged.tracking.uri == "https://lead:***@mlflow.example.com"
    assert dataclasses.replace(staged, tracking=cfg.tracking) == cfg
    assert not leaks(*objects.values())


def test_the_staged_config_re_types_into_an_equal_config(compose):
    from lrsweep.launch.staging import config_text

    for overrides in (
        ("cluster=emr", "backend=spark", "threshold=cost", "threshold.cost_fn=7", "search=elasticnet"),
        ("cluster=standalone", "cluster.master=spark://h:7077", "backend=spark", "threshold=recall_at", "cv.folds=3"),
        ("backend=sklearn", "dataset=ctr", "dataset.rows=200000", "threshold=fixed", "+cluster.spark_conf={a.b: c}"),
    ):
        cfg = compose(*overrides)
        back = config_from_yaml(config_text(cfg))
        assert back == cfg, overrides
        assert type(back.backend) is type(cfg.backend) and type(back.cluster) is type(cfg.cluster)
        assert type(back.threshold) is type(cfg.threshold)


def test_a_staged_config_with_a_key_no_schema_has_is_one_line(compose):
    from lrsweep.errors import LrsweepError
    from lrsweep.launch.staging import config_text

    text = config_text(compose("cluster=emr")).replace("core_nodes: 2", "core_nodes: 2\n  cores_per_node: 4")
    with pytest.raises(LrsweepError) as exc:
        config_from_yaml(text)
    assert "cores_per_node" in _one_line(exc)


def test_a_dry_run_creates_nothing_and_prints_the_request_a_launch_sends(aws: Moto, compose, monkeypatch):
    cfg = compose(*EMR, *GROUPS)
    dry = launch(cfg, dry_run=True, echo=lambda _: None)
    assert aws.requests() == []  # not one request: nothing listed, uploaded or created
    assert aws.objects() == {} and aws.client("emr").list_clusters()["Clusters"] == []
    printed = _printed_request(dry.lines)
    assert printed == dry.request and dry.cluster_id is None and dry.step_id is None
    for uri in dry.staged.values():
        assert any(uri in line for line in dry.lines)
    assert any("lrsweep-0.1.0-py3-none-any.whl would be built" in line for line in dry.lines)
    assert not leaks(*dry.lines)

    real = launch(cfg, echo=lambda _: None)
    (sent,) = aws.emr_calls("RunJobFlow")
    assert printed == real.request == sent
    assert real.staged == dry.staged
    assert {f"s3://{BUCKET}/{k}" for k in aws.objects()} == set(dry.staged.values())


def test_a_dry_run_needs_no_credentials(aws: Moto, compose, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    dry = launch(compose(*EMR), dry_run=True, echo=lambda _: None)
    assert dry.request["Steps"][0]["HadoopJarStep"]["Args"][-1] == dry.staged["config"]
    assert aws.requests() == []


def _long_running_cluster(emr, name: str) -> str:
    """A cluster someone else started (kept alive without steps), as moto holds it; its id."""
    return emr.run_job_flow(
        Name=name, ReleaseLabel="emr-7.5.0", Instances={"KeepJobFlowAliveWhenNoSteps": True,
        "InstanceGroups": [{"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}]},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]  # fmt: skip


def test_an_existing_cluster_gets_only_a_step_that_installs_the_wheel_first(aws: Moto, compose):
    emr = aws.client("emr")
    existing = _long_running_cluster(emr, "shared")
    aws.post("/moto-api/recorder/reset-recording")
    cfg = compose(*EMR, f"cluster.cluster_id={existing}")
    dry = launch(cfg, dry_run=True, echo=lambda _: None)
    assert aws.requests() == []

    launched = launch(cfg, echo=lambda _: None)
    assert _printed_request(dry.lines) == dry.request == launched.request

    assert launched.cluster_id == existing
    assert [c["Id"] for c in emr.list_clusters()["Clusters"]] == [existing]
    assert aws.emr_calls("RunJobFlow") == []
    (sent,) = aws.emr_calls("AddJobFlowSteps")
    assert sent == launched.request and sent["JobFlowId"] == existing
    (step,) = emr.list_steps(ClusterId=existing)["Steps"]
    assert step["Id"] == launched.step_id and step["ActionOnFailure"] == "CONTINUE"
    args = step["Config"]["Args"]
    assert args[:2] == ["bash", "-c"]
    command = args[2]
    bootstrap, wheel, config = (launched.staged[k] for k in ("bootstrap", "wheel", "config"))
    # fetch the install script, run it with the bootstrap action's arguments, then the step (shipping lrsweep)
    assert command.index(bootstrap) < command.index(f"{wheel} python3.11 spark,s3")
    assert command.endswith(f"exec python3.11 -m lrsweep.launch.step --ship-package {config}")
    assert subprocess.run(["bash", "-n", "-c", command], check=False).returncode == 0
    assert emr.list_bootstrap_actions(ClusterId=existing)["BootstrapActions"] == []
    assert len(aws.objects()) == 3


def test_a_given_wheel_is_staged_byte_for_byte(aws: Moto, compose, built_wheel: Path):
    launched = launch(compose(*EMR, f"launch.wheel={built_wheel}"), echo=lambda _: None)
    key = launched.staged["wheel"].removeprefix(f"s3://{BUCKET}/")
    assert aws.objects()[key] == built_wheel.read_bytes()


# -- refusals: one line, nothing created -------------------------------------------------------------------
def _nothing_created(aws: Moto, bucket: str = BUCKET) -> None:
    assert aws.objects(bucket) == {}
    assert aws.client("emr").list_clusters()["Clusters"] == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ("cluster.s3_uri=s3://no-such-bucket-here/x",),
            "S3 bucket 'no-such-bucket-here' (cluster.s3_uri) does not exist",
        ),
        (("cluster.cluster_id=j-NOSUCHCLUSTER",), "EMR cluster j-NOSUCHCLUSTER (cluster.cluster_id) does not exist"),
        (("cluster.core_nodes=0",), "cluster.core_nodes=0 is impossible"),
        (("cluster.s3_uri=null",), "cluster=emr needs cluster.s3_uri"),
        (("dataset=csv", "dataset.path=data/churn.csv", "dataset.target=y"), "is a file on this machine"),
        (("tracking.uri=null",), "lost when the cluster ends"),
        (("tracking.uri=sqlite:///mlflow.db",), "lost when the cluster ends"),
        (("study.storage=postgresql://u:LAUNCH-FAKE-MLFLOW-PW-77@db/optuna",), "study.storage holds a credential"),
    ],
    ids=["no-bucket", "no-cluster", "zero-nodes", "no-s3-uri", "local-data", "default-store", "sqlite", "secret"],
)
def test_a_launch_it_cannot_do_is_one_line_and_creates_nothing(aws: Moto, compose, overrides, expected):
    from lrsweep.errors import LrsweepError

    with pytest.raises(LrsweepError) as exc:
        launch(compose(*EMR, *overrides), echo=lambda _: None)
    assert expected in _one_line(exc)
    _nothing_created(aws)


def test_a_terminated_cluster_is_refused(aws: Moto, compose):
    from lrsweep.errors import LrsweepError

    emr = aws.client("emr")
    gone = _long_running_cluster(emr, "old")
    emr.terminate_job_flows(JobFlowIds=[gone])
    with pytest.raises(LrsweepError) as exc:
        launch(compose(*EMR, f"cluster.cluster_id={gone}"), echo=lambda _: None)
    assert f"EMR cluster {gone} is TERMINATED" in _one_line(exc)
    assert aws.objects() == {} and emr.list_steps(ClusterId=gone)["Steps"] == []


def test_no_credentials_is_one_line(aws: Moto, compose, monkeypatch):
    from lrsweep.errors import LrsweepError

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(LrsweepError) as exc:
        launch(compose(*EMR), echo=lambda _: None)
    assert "no AWS credentials found" in _one_line(exc) and "AWS_ACCESS_KEY_ID" in str(exc.value)
    _nothing_created(aws)


def test_an_unreachable_endpoint_is_one_line(aws: Moto, compose, monkeypatch):
    from lrsweep.errors import LrsweepError
    from tests.data.servers import refused_port

    with refused_port() as port, pytest.raises(LrsweepError) as exc:
        dead = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
        launch(compose(*EMR), echo=lambda _: None)
    line = _one_line(exc)
    assert "cannot reach AWS" in line and dead in line and "AWS_ENDPOINT_URL" in line


@pytest.mark.parametrize("cluster", ["local"])
def test_a_cluster_launch_cannot_run_on_is_one_line(compose, cluster):
    from lrsweep.errors import LrsweepError

    with pytest.raises(LrsweepError) as exc:
        launch(compose(f"cluster={cluster}", f"cluster.s3_uri={S3_URI}"), echo=lambda _: None)
    assert "lrsweep launch cannot run on cluster=local" in _one_line(exc) and "cluster=emr" in str(exc.value)


def test_no_password_of_the_tracking_uri_reaches_any_line(aws: Moto, compose):
    printed: list[str] = []
    launched = launch(compose(*EMR), echo=printed.append)
    assert MLFLOW_PASSWORD not in "\n".join(printed + launched.lines) + json.dumps(launched.request)
    assert any("MLFLOW_TRACKING_PASSWORD" in line for line in printed)  # it says how the cluster logs in


def test_a_rehearsal_needs_somewhere_to_stage_too(compose):
    from lrsweep.errors import LrsweepError

    with pytest.raises(LrsweepError) as exc:
        launch(compose("backend=spark", "cluster=standalone", "cluster.master=spark://h:7077"), echo=lambda _: None)
    assert _one_line(exc) == (
        "cluster=standalone needs cluster.s3_uri, where the launch stages the wheel and the config; "
        "add cluster.s3_uri=s3://BUCKET/PREFIX"
    )


def test_without_boto3_a_launch_says_what_to_install_and_a_dry_run_still_works(compose, monkeypatch):
    import sys

    from lrsweep.errors import LrsweepError

    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError, as when not installed
    cfg = compose(*EMR)
    assert launch(cfg, dry_run=True, echo=lambda _: None).request["ReleaseLabel"] == "emr-7.5.0"
    with pytest.raises(LrsweepError) as exc:
        launch(cfg, echo=lambda _: None)
    assert _one_line(exc) == "lrsweep launch needs boto3, which is not installed; pip install 'lrsweep[aws]'"
