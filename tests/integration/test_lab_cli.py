"""`tinynode lab` pieces that need no daemon: topologies, the fork-tree drawing, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinynode.lab import Lab, LabError, lab_main, render_fork_tree, topology_edges


def _connected(n: int, edges: list[tuple[int, int]]) -> bool:
    reach, todo = {0}, [0]
    while todo:
        x = todo.pop()
        for a, b in edges:
            for u, v in ((a, b), (b, a)):
                if u == x and v not in reach:
                    reach.add(v)
                    todo.append(v)
    return len(reach) == n


@pytest.mark.parametrize("topology", ["line", "star", "mesh", "random"])
@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_topologies_are_connected_and_dial_only_earlier_nodes(topology: str, n: int) -> None:
    edges = topology_edges(n, topology, seed=7)
    assert _connected(n, edges)
    assert all(0 <= b < a < n for a, b in edges)        # node a dials b, which starts no later
    assert len(set(edges)) == len(edges)


def test_topology_shapes() -> None:
    assert topology_edges(4, "line") == [(1, 0), (2, 1), (3, 2)]
    assert topology_edges(4, "star") == [(1, 0), (2, 0), (3, 0)]
    assert len(topology_edges(4, "mesh")) == 6
    assert topology_edges(9, "random", seed=1) == topology_edges(9, "random", seed=1)
    with pytest.raises(LabError, match="unknown topology"):
        topology_edges(3, "ring")


def _chains(**branches: str) -> dict[str, list[str]]:
    """Chains as strings of block letters over a shared genesis 'G': {'a': 'G12x', ...}."""
    return {k: [f"{c}" * 64 for c in v] for k, v in branches.items()}


def _tree(chains: dict[str, list[str]], names: dict[str, list[str]]) -> str:
    keys = list(chains)
    lookups: list[tuple[int, int]] = []

    def hash_at(k: int, h: int) -> str:
        lookups.append((k, h))
        return chains[keys[k]][h]
    return render_fork_tree([(len(chains[k]) - 1, names[k]) for k in keys], hash_at)


def test_fork_tree_single_tip() -> None:
    assert _tree(_chains(a="G123"), {"a": ["n0", "n1"]}) == f"height 3  {'3' * 16}  <- n0 n1"


def test_fork_tree_two_branches_longest_first() -> None:
    t = _tree(_chains(a="G12ab", b="G12xyz"), {"a": ["n0"], "b": ["n1", "n2"]})
    assert t.splitlines() == [
        f"height 2  {'2' * 16}",
        f"├── height 5  {'z' * 16}  <- n1 n2",
        f"└── height 4  {'b' * 16}  <- n0",
    ]


def test_fork_tree_node_behind_sits_on_the_shared_block() -> None:
    t = _tree(_chains(a="G12", b="G1234"), {"a": ["n2"], "b": ["n0"]})
    assert t.splitlines() == [f"height 2  {'2' * 16}  <- n2", f"└── height 4  {'4' * 16}  <- n0"]


def test_fork_tree_nested_forks() -> None:
    t = _tree(_chains(a="G1abc", b="G1abd", c="G1xy"), {"a": ["n0"], "b": ["n1"], "c": ["n2"]})
    assert t.splitlines() == [
        f"height 1  {'1' * 16}",
        f"├── height 3  {'b' * 16}",
        f"│   ├── height 4  {'c' * 16}  <- n0",
        f"│   └── height 4  {'d' * 16}  <- n1",
        f"└── height 3  {'y' * 16}  <- n2",
    ]


def test_fork_tree_deep_chain_uses_few_lookups() -> None:
    a = ["G"] + [f"{i:064x}" for i in range(1, 10_001)]
    b = a[:5000] + [f"f{i:063x}" for i in range(5000, 9_001)]
    calls = []

    def hash_at(k: int, h: int) -> str:
        calls.append(h)
        return (a, b)[k][h]
    t = render_fork_tree([(10_000, ["n0"]), (9_000, ["n1"])], hash_at)
    assert t.splitlines()[0] == f"height 4999  {a[4999][:16]}"
    assert len(calls) < 100


def test_lab_main_without_a_lab(tmp_path: Path, capsys) -> None:
    d = str(tmp_path / "none")
    assert lab_main(["--dir", d, "tips"]) == 1
    assert "no lab in" in capsys.readouterr().err
    assert lab_main(["--dir", d, "down"]) == 0
    assert "no lab in" in capsys.readouterr().out
    assert lab_main(["--dir", d, "frobnicate"]) == 1
    assert "unknown lab command" in capsys.readouterr().err
    assert lab_main(["--help"]) == 0
    assert "partition" in capsys.readouterr().out


def test_lab_up_rejects_bad_arguments(tmp_path: Path, capsys) -> None:
    d = str(tmp_path / "lab")
    assert lab_main(["--dir", d, "up", "3", "--topology", "ring"]) == 1
    assert "unknown topology" in capsys.readouterr().err
    assert lab_main(["--dir", d, "up", "2", "--miners", "0,5"]) == 1
    assert "do not exist" in capsys.readouterr().err
    assert lab_main(["--dir", d, "up", "2", "--network", "mainnet"]) == 1
    assert "unknown network" in capsys.readouterr().err
    assert lab_main(["--dir", d, "up"]) == 1
    assert not Lab(d).exists()


def test_short_socket_dir_for_a_deep_lab_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    lab = Lab(deep)
    sock = lab._sockdir() / "n999.sock"
    assert len(str(sock).encode()) <= 100
    assert Lab(deep)._sockdir() == lab._sockdir()      # stable: every verb finds the sockets
