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
    assert services["node1"]["ports"] == ["9999:9999"]
    for name in ("node2", "node3"):
        assert services[name]["environment"]["TC_PEERS"] == "node1"
        assert services[name]["image"] == services["node1"]["image"]
    for svc in services.values():
        assert any(v.endswith(":/home/tinynode/.tinynode") for v in svc["volumes"])
