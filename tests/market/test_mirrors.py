"""Mirrors of tensors on a content network (docs/SPEC.md 8.10): the manifest's layout, a reader
that checks every byte before use, and the order in which it tries announced mirrors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from verifier.commit.commitments import CHUNK, commit_tensor
from verifier.market import availability as av
from verifier.market import mirrors
from verifier.market.content import ContentError, ContentStore, cid_of, cid_of_digest

SMALL = np.arange(-7, 8, dtype=np.int8).reshape(3, 5)
# 1.2 MB: five parts of 256 KiB, the last one short
WIDE = np.arange(300_000, dtype=np.int32) * 7919 - 10**9


@pytest.fixture
def store(tmp_path) -> ContentStore:
    return ContentStore(tmp_path / "content")


@pytest.mark.parametrize("array", [SMALL, WIDE, np.zeros((0, 4), np.int64), np.array(-3, np.int64), np.array([True, False, True])], ids=["small", "wide", "empty", "scalar", "bool"])
def test_put_get__round_trip_and_the_manifest_layout(store, array) -> None:
    digest = mirrors.put(store, array)
    manifest = store.get(cid_of_digest(digest))
    header, data = av.payload(array)
    parts = [data[i : i + mirrors.PART_BYTES] for i in range(0, len(data), mirrors.PART_BYTES)]
    assert manifest == b"BMLM" + header + b"".join(hashlib.sha256(p).digest() for p in parts)
    assert all(store.has(cid_of(p)) for p in parts)
    got = mirrors.get(store, commit_tensor(array), digest)
    assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)


def test_parts_are_256_kib() -> None:
    _, parts = mirrors.manifest_of(*av.payload(WIDE))
    assert [len(p) for p in parts] == [262_144] * 4 + [-(-WIDE.nbytes // CHUNK) * CHUNK - 4 * 262_144]
    assert mirrors.MAX_PARTS == 256  # 64 MiB, Availability.vy's largest tensor


def test_get__a_tampered_part_is_refused(store) -> None:
    digest = mirrors.put(store, WIDE)
    manifest = store.get(cid_of_digest(digest))
    part_cid = cid_of_digest(manifest[36 + 64 : 36 + 96])
    path = store.root / part_cid
    path.write_bytes(path.read_bytes()[:-1] + b"\x01")
    with pytest.raises(ContentError, match="does not hash to its content id"):
        mirrors.get(store, commit_tensor(WIDE), digest)


def test_get__a_manifest_of_another_tensor_is_refused(store) -> None:
    """The mirror's announcer lists the parts of another tensor of the same type: every part
    hashes to its CID, and only the commitment shows the difference."""
    other = SMALL.copy()
    other[0, 0] += 1
    digest = mirrors.put(store, other)
    with pytest.raises(av.AvailabilityError, match="holds another tensor"):
        mirrors.get(store, commit_tensor(SMALL), digest)


def test_get__a_manifest_of_another_type_than_the_chain_logged_is_refused_before_any_part_is_fetched(store) -> None:
    """A reader that knows the header Availability.vy logged for the commitment refuses a
    manifest of another type unread: a wrong mirror costs it at most the tensor's own size."""
    wide_manifest, _ = mirrors.manifest_of(*av.payload(WIDE))
    store.put(wide_manifest)  # its parts are nowhere: fetching one would raise ContentMissing
    digest = hashlib.sha256(wide_manifest).digest()
    with pytest.raises(av.AvailabilityError, match="of another tensor type"):
        mirrors.get(store, commit_tensor(SMALL), digest, av.payload(SMALL)[0])
    right = mirrors.put(store, SMALL)
    assert np.array_equal(mirrors.get(store, commit_tensor(SMALL), right, av.payload(SMALL)[0]), SMALL)


def test_get__a_manifest_longer_than_its_header_is_refused_before_any_part_is_fetched(store) -> None:
    header, _ = av.payload(SMALL)
    # it lists a part nobody has: were it fetched, the error would be ContentMissing instead
    manifest = b"BMLM" + header + bytes(64)
    store.put(manifest)
    digest = hashlib.sha256(manifest).digest()
    with pytest.raises(av.AvailabilityError, match="lists 2 parts where its header needs 1"):
        mirrors.get(store, commit_tensor(SMALL), digest)


def test_get__a_manifest_above_the_largest_tensor_is_refused_before_any_part_is_fetched(store) -> None:
    from verifier.commit.commitments import tensor_header
    from verifier.core.dtypes import DType, TensorType

    header = tensor_header(TensorType(DType.INT64, (1 << 23 | 1,)))  # 64 MiB and one element
    manifest = b"BMLM" + header + bytes(32 * 257)
    store.put(manifest)
    with pytest.raises(av.AvailabilityError, match="above the 67,108,864 bytes a mirror may hold"):
        mirrors.get(store, commit_tensor(SMALL), hashlib.sha256(manifest).digest())


@pytest.mark.parametrize(
    "manifest",
    [b"BMLX" + av.payload(SMALL)[0] + bytes(32), b"BMLM" + bytes(31), b"BMLM" + bytes(32) + bytes(32), b"BMLM" + av.payload(SMALL)[0] + bytes(33)],
    ids=["magic", "short", "header", "ragged"],
)
def test_get__not_a_manifest_is_refused(store, manifest) -> None:
    digest = hashlib.sha256(manifest).digest()
    store.put(manifest)
    with pytest.raises(av.AvailabilityError, match="is not a tensor manifest"):
        mirrors.get(store, commit_tensor(SMALL), digest)


def test_announced__the_trusted_announcer_first_newest_first_at_most_max_tries() -> None:
    """On the in-process chain: announcements are logs anyone can send; a reader orders those
    of the addresses it trusts first, so a flood from others cannot push them out."""
    from verifier.court.chain import Chain, deploy_suite

    chain = Chain.embedded()
    deployment = deploy_suite(chain)
    availability = deployment.contracts(chain)["Availability"]
    solver, griefer = chain.w3.eth.accounts[1], chain.w3.eth.accounts[2]
    commitment = commit_tensor(SMALL)

    def announce(who: str, tag: int) -> bytes:
        digest = tag.to_bytes(32, "big")
        receipt = chain.as_account(who).send(mirrors.announce_call(availability, commitment, digest))
        assert receipt["status"] == 1
        (log,) = availability.events.Mirrored().process_receipt(receipt)
        assert (bytes(log["args"]["commitment"]), log["args"]["mirror"], bytes(log["args"]["manifest"])) == (commitment, who, digest)
        return digest

    first = announce(solver, 1)
    floods = [announce(griefer, 10 + i) for i in range(6)]
    second = announce(solver, 2)
    announce(solver, 1)  # repeats are tried once
    announce(griefer, 10)
    other = commit_tensor(WIDE)
    chain.as_account(griefer).send(mirrors.announce_call(availability, other, bytes(32)))

    def found(*trusted: str) -> dict:
        return mirrors.announced(deployment, availability, [commitment, other], trusted)

    assert found(solver) == {commitment: [first, second, floods[0], floods[5]], other: [bytes(32)]}
    assert found(solver.lower())[commitment][:2] == [first, second]
    # trusting nobody: newest first, each digest once
    assert found()[commitment] == [floods[0], first, second, floods[5]]
    assert mirrors.announced(deployment, availability, [commit_tensor(SMALL[:1])], [solver]) == {commit_tensor(SMALL[:1]): []}
    assert mirrors.announced(deployment, availability, []) == {}
    assert not availability.functions.available(commitment).call()  # an announcement makes nothing available
    assert mirrors.headers(deployment, availability, [commitment]) == {}
    assert av.publish(chain, availability, SMALL)["status"] == 1
    assert mirrors.headers(deployment, availability, [commitment, other]) == {commitment: av.payload(SMALL)[0]}
