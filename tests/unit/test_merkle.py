"""Merkle trees must match RFC 9162/6962 exactly, or nobody else can check our roots."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.merkle import inclusion_proof, merkle_root, verify_inclusion

# Reference leaves and roots of the Certificate Transparency test suite (also used by
# transparency-dev/merkle); ROOTS[n] is the root of the first n leaves.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path) from the same suite.
PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_the_rfc_6962_reference(size: int) -> None:
    assert merkle_root(LEAVES[:size]).hex() == ROOTS[size]


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("index", "size", "path"), PROOFS)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    leaves = LEAVES[:size]
    proof = inclusion_proof(leaves, index)
    assert [node.hex() for node in proof] == path
    assert verify_inclusion(leaves[index], index, size, proof, merkle_root(leaves))


@pytest.mark.parametrize(("index", "size", "path"), PROOFS)
def test_corrupted_proofs_are_rejected(index: int, size: int, path: list[str]) -> None:
    leaves = LEAVES[:size]
    root = merkle_root(leaves)
    proof = [bytes.fromhex(p) for p in path]
    leaf = leaves[index]
    bad: list[tuple[bytes, int, int, list[bytes], bytes]] = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, hashlib.sha256(b"").digest()),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, proof[:-1], root),
        (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        bad.append((leaf, index, size, flipped, root))
    for case in bad:
        assert not verify_inclusion(*case), case


def test_every_proof_of_every_tree_size_verifies_and_no_other_leaf_does() -> None:
    leaves = [bytes([i, i * 7 % 256]) for i in range(40)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = merkle_root(tree)
        for index in range(size):
            proof = inclusion_proof(tree, index)
            assert verify_inclusion(tree[index], index, size, proof, root)
            assert not verify_inclusion(b"other", index, size, proof, root)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_any_tree_proves_each_leaf(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, len(leaves), proof, merkle_root(leaves))


def test_proof_for_an_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(LEAVES[:3], 3)
