"""No docker daemon runs here: check the Dockerfile and compose file by reading them."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _readme_install_command() -> str:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    first = block.strip().splitlines()[0]
    return first.split("&&")[0].strip()


def test_dockerfile_installs_like_the_readme_and_runs_the_daemon():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim", text, re.M)
    assert f"RUN {_readme_install_command()}" in text
    assert re.search(r"^USER tinynode$", text, re.M), "runs as a non-root user"
    assert "VOLUME" in text and "EXPOSE 9999" in text
    assert 'HEALTHCHECK' in text and '"tinynode-cli", "getblockcount"' in text
    assert re.search(r'^ENTRYPOINT \["tinynode", "--network", "tinynet", "--mine"\]', text, re.M)


def test_compose_three_mining_nodes_seeded_by_node1():
    compose = yaml.safe_load((ROOT / "contrib" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"node1", "node2", "node3"}
    assert services["node1"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    for name in ("node2", "node3"):
        assert services[name]["environment"]["TC_PEERS"] == "node1"
        assert services[name]["image"] == services["node1"]["image"]
    for svc in services.values():
        assert any(v.endswith("/home/tinynode/.tinynode") for v in svc["volumes"])


def _compose():
    return yaml.safe_load((ROOT / "contrib" / "docker-compose.yml").read_text())


def test_compose_works_with_v1_and_v2():
    """issue 19: `docker-compose` 1.x needs a `version` (v2 tolerates it); no v2-only keys
    (`name`, `profiles`, `develop`, `include`, long `depends_on` with conditions, `deploy`)."""
    compose = _compose()
    assert re.fullmatch(r"3\.[0-9]+", compose["version"])
    assert set(compose) <= {"version", "services", "volumes"}
    for svc in compose["services"].values():
        assert not set(svc) & {"profiles", "develop", "deploy", "pull_policy", "include"}
        assert isinstance(svc.get("depends_on", []), list), "v1 knows depends_on as a list"
    text = (ROOT / "contrib" / "docker-compose.yml").read_text()
    assert "docker-compose -f contrib/docker-compose.yml up --build" in text


def test_compose_scales_with_one_volume_per_replica():
    """`--scale node3=5` must give each replica its own datadir: no fixed container_name, no
    host port, and no named volume on a scalable service (replicas would share it: the second
    one fails with `Cannot obtain a lock`)."""
    compose = _compose()
    named = set(compose.get("volumes") or {})
    for name in ("node2", "node3"):
        svc = compose["services"][name]
        assert "container_name" not in svc and "ports" not in svc
        for v in svc["volumes"]:
            source = v.split(":")[0] if ":" in v else None
            assert source is None or source not in named, f"{name} shares the named volume {source}"
        assert svc["volumes"] == ["/home/tinynode/.tinynode"]     # anonymous: one per container


def test_compose_publishes_on_loopback_unless_asked_and_restarts():
    compose = _compose()
    ports = compose["services"]["node1"]["ports"]
    assert ports == ["${TC_PUBLISH:-127.0.0.1}:9999:9999"]
    # what Compose makes of it without TC_PUBLISH: bound to 127.0.0.1 only
    resolved = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), ports[0])
    assert resolved == "127.0.0.1:9999:9999"
    for svc in compose["services"].values():
        assert svc["restart"] == "unless-stopped"
        for p in svc.get("ports", []):
            p = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), p)
            assert p.count(":") == 2 and p.startswith("127.0.0.1:"), f"{p} would publish on every interface"
