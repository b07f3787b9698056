"""contracts/Availability.vy: tensors whose bytes are in the chain's history (docs/SPEC.md 8.10).

The contract computes the commitment of the bytes it is sent; these tests hold it to SPEC 1.3
(the Python commitments, which an independent implementation reproduced) for every dtype and
for tensors of one chunk and of many, refuse every malformed publication, and read a
publication back from a real chain's calldata with `verifier.market.availability`.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from _court import CONTRACTS, Refused, publish_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.commit.commitments import CHUNK, commit_tensor
from verifier.market.availability import (
    AvailabilityError,
    decode,
    fetch_tensor,
    payload,
    publish,
)

HEADER_INT8_4 = bytes([3, 1, 0, 0, 0, 4]) + bytes(26)


@pytest.fixture(scope="module")
def availability():
    # an environment of its own: boa's revert messages dump storage from the environment's
    # traces, which another module's contracts at the same address would otherwise confuse
    with boa.swap_env(boa.Env()):
        yield boa.load_partial(str(CONTRACTS / "Availability.vy")).deploy()


ARRAYS = [
    np.arange(-4, 4, dtype=np.int8).reshape(2, 4),
    np.array(7, np.int64),  # rank 0
    np.zeros((0, 5), np.int8),  # no elements: one zero chunk
    np.arange(3000, dtype=np.int64).astype(np.int8),  # int8 over two chunks
    np.arange(-300, 300, dtype=np.int64).reshape(20, 30) * 10**12,  # int64, 4800 bytes: three chunks
    np.arange(512, dtype=np.int32) - 256,  # int32, exactly one full chunk
    np.array([True, False, True]),
    np.full((1024, 256), -1, np.int8),  # the largest dataset: 128 chunks
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_publish__commitment_is_spec_1_3s(availability, array):
    header, data = payload(array)
    assert len(data) % CHUNK == 0
    computation = publish_raw(availability, header, data)
    c = bytes(computation.output)
    (ev,) = [e for e in availability.get_logs(computation) if type(e).__name__ == "Published"]
    assert c == commit_tensor(array)
    assert availability.available(c)
    assert (ev.commitment, ev.header, ev.size) == (c, header, array.size * array.dtype.itemsize)
    assert np.array_equal(decode(header, data), array)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from([np.int8, np.int32, np.int64]),
    shape=st.lists(st.integers(0, 40), min_size=0, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_publish__any_tensor(availability, dtype, shape, seed):
    info = np.iinfo(dtype)
    array = np.random.default_rng(seed).integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    assert bytes(publish_raw(availability, *payload(array)).output) == commit_tensor(array)


def test_publish__unpublished_is_unavailable(availability):
    assert not availability.available(commit_tensor(np.array([1, 2, 3, 99], np.int8)))


@pytest.mark.parametrize(
    "header, data, reason",
    [
        (bytes([5]) + HEADER_INT8_4[1:], bytes(CHUNK), "availability: not a canonical header"),  # dtype 5
        (HEADER_INT8_4[:-1] + b"\x01", bytes(CHUNK), "availability: not a canonical header"),  # trailing byte
        (HEADER_INT8_4, bytes(CHUNK - 1), "availability: data is not the header's whole chunks"),
        (HEADER_INT8_4, bytes(2 * CHUNK), "availability: data is not the header's whole chunks"),
        (HEADER_INT8_4, b"", "availability: data is not the header's whole chunks"),
        (HEADER_INT8_4, bytes(4) + b"\x01" + bytes(CHUNK - 5), "availability: padding is not zero"),
        (HEADER_INT8_4, bytes(CHUNK - 1) + b"\x01", "availability: padding is not zero"),
    ],
)
def test_publish__malformed__reverts(availability, header, data, reason):
    """Only a canonical tensor encoding is made available: its header, whole chunks, zero padding."""
    with pytest.raises(Refused, match=reason):
        publish_raw(availability, header, data)


def test_fetch_tensor__reads_the_publication_back_from_a_real_chain():
    """On the in-process chain: a dataset published through the client is read back from its
    transaction's calldata, checked against the commitment; an unpublished commitment is one
    clear error."""
    from verifier.court.chain import Chain, deploy_suite

    chain = Chain.embedded()
    deployment = deploy_suite(chain)
    contract = deployment.contracts(chain)["Availability"]
    array = np.arange(5000, dtype=np.int64).reshape(50, 100).astype(np.int8)
    assert publish(chain, contract, array)["status"] == 1
    assert contract.functions.available(commit_tensor(array)).call()
    got = fetch_tensor(chain.w3, contract, commit_tensor(array), deployment.block)
    assert got.dtype == np.int8 and np.array_equal(got, array)
    with pytest.raises(AvailabilityError, match="never published"):
        fetch_tensor(chain.w3, contract, commit_tensor(array[:1]), deployment.block)


FORWARDER = """
# pragma version ~=0.4.0
@external
def forward(target: address, data: Bytes[4096]):
    raw_call(target, data)
"""


def test_fetch_tensor__newest_first__a_publication_through_a_contract_hides_no_direct_one(monkeypatch):
    """Anyone may publish the same bytes again through a contract (its bytes are then not its
    transaction's input): the reader passes over it to a direct publication. Published only
    that way, the tensor is one clear error. The logs are read a few blocks per request, as a
    public node caps the range, newest first (a recent publication costs one request) and not
    before the block given."""
    import vyper

    import verifier.court.chain as chain_module
    import verifier.market.availability as availability_module
    from verifier.court.chain import Chain, deploy_suite
    from verifier.market.availability import calldata

    chain = Chain.embedded()
    deployment = deploy_suite(chain)
    contract = deployment.contracts(chain)["Availability"]
    out = vyper.compile_code(FORWARDER, output_formats=["abi", "bytecode"])
    factory = chain.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    forwarder = chain.w3.eth.contract(
        address=chain.w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": chain.account}))["contractAddress"],
        abi=out["abi"],
    )

    def through_forwarder(array: np.ndarray) -> None:
        tx = forwarder.functions.forward(contract.address, calldata(*payload(array))).transact({"from": chain.account})
        assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1

    requests = []
    real = availability_module.log_windows

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for window in real(*args, **kwargs):
            requests.append(kwargs.get("newest_first"))
            yield window

    monkeypatch.setattr(chain_module, "LOG_RANGE", 3)
    monkeypatch.setattr(availability_module, "log_windows", counted)
    old, recent, wrapped_only = np.arange(40, dtype=np.int8), np.arange(9, dtype=np.int32), np.arange(7, dtype=np.int64)
    assert publish(chain, contract, old)["status"] == 1
    for _ in range(7):  # more than two requests' ranges
        chain.send(deployment.contracts(chain)["Token"].functions.mint(chain.account, 1), "mint")
    through_forwarder(old)  # the newest publication of `old` is not readable from its input
    assert len(contract.events.Published().get_logs(from_block=deployment.block, argument_filters={"commitment": commit_tensor(old)})) == 2
    assert np.array_equal(fetch_tensor(chain.w3, contract, commit_tensor(old), deployment.block), old)
    assert len(requests) >= 3 and all(requests)
    requests.clear()
    assert publish(chain, contract, recent)["status"] == 1
    assert np.array_equal(fetch_tensor(chain.w3, contract, commit_tensor(recent), deployment.block), recent)
    assert requests == [True]  # found in the newest range
    through_forwarder(wrapped_only)
    assert contract.functions.available(commit_tensor(wrapped_only)).call()
    with pytest.raises(AvailabilityError, match="published only by contract calls; fetch it by its content id"):
        fetch_tensor(chain.w3, contract, commit_tensor(wrapped_only), deployment.block)
    head = chain.w3.eth.block_number
    with pytest.raises(AvailabilityError, match="never published"):  # nothing read before the block given
        fetch_tensor(chain.w3, contract, commit_tensor(old), head)


def test_market_client__rebuilds_a_dataset_it_never_received_from_the_chain(tmp_path):
    """Issue 11.13: a verifier who cannot get a dataset's file from anyone rebuilds it from the
    chain: a client with an empty content store reads the dataset's tensors from their
    publications (checked against the market's commitments) and keeps the file under its id."""
    from verifier.court.chain import Chain, deploy_suite
    from verifier.market.client import MarketClient
    from verifier.market.content import ContentStore

    chain = Chain.embedded()
    deployment = deploy_suite(chain)
    provider = MarketClient(chain, deployment, ContentStore(tmp_path / "provider"))
    x = np.arange(64 * 8, dtype=np.int64).reshape(64, 8).astype(np.int8)
    y = np.where(np.arange(64) % 3 == 0, 1, -1).astype(np.int8)
    published = provider.publish_dataset(x, y, 0)
    verifier = MarketClient(chain, deployment, ContentStore(tmp_path / "verifier"))
    assert not verifier.store.has(published["cid"])
    gx, gy = verifier.dataset_arrays(published["dataset_id"])
    assert np.array_equal(gx, x) and np.array_equal(gy, y)
    assert verifier.store.has(published["cid"])


# -- publication in parts (SPEC 8.10): any tensor up to 64 MiB, 64 KiB a transaction ------------


def _raw(availability, calldata: bytes):  # noqa: ANN001, ANN202
    from eth.exceptions import Revert
    from eth_abi import decode as abi_decode

    try:
        return boa.env.raw_call(availability.address, data=calldata)
    except Revert as e:
        out = bytes(e.args[0])
        raise Refused(abi_decode(["string"], out[4:])[0] if out[:4] == bytes.fromhex("08c379a0") else out.hex()) from None


PART_ARRAYS = [
    np.arange(3, dtype=np.int8),  # one chunk: one part, its root the data root
    np.arange(16 * 256, dtype=np.int64),  # 16 chunks: one part of height 4
    np.arange(32 * 256, dtype=np.int64),  # exactly one full part
    np.arange(32 * 256 + 1, dtype=np.int64),  # a second part of one chunk, lifted to height 5
    (np.arange(70 * 2048) % 251).astype(np.int8),  # 70 chunks: 32 + 32 + 6
    np.arange(300 * 300, dtype=np.int64).reshape(300, 300) - 45_000,  # 720,000 bytes: 352 chunks, 11 parts
]


@pytest.mark.parametrize("array", PART_ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_parts__assembled_commitment_is_spec_1_3s(availability, array):
    """Each part's root is the node of the tensor's chunk tree above its chunks, and assembling
    the roots gives the tensor's commitment, the same as one `publish` of the whole."""
    from verifier.market.availability import part_calldata, part_key, part_roots

    header, data = payload(array)
    roots = part_roots(array)
    assert len(roots) == -(-len(data) // (32 * CHUNK))
    for i, root in enumerate(roots):
        assert bytes(_raw(availability, part_calldata(header, data, i)).output) == root
        assert availability.parts(part_key(header, i, root)) and availability.part_key(header, i, root) == part_key(header, i, root)
    assert not availability.available(commit_tensor(array)) or len(roots) == 1
    assert availability.assemble(header, roots) == commit_tensor(array)
    assert availability.available(commit_tensor(array))


def test_parts__refused_unless_each_part_is_the_tensors_own(availability):
    """A part outside the tensor, a part of the wrong length, non-zero padding in the last part,
    the wrong number of roots, a root never published (or published under another index or
    header), and a header too large are all refused; nothing becomes available."""
    from verifier.market.availability import part_calldata, part_roots

    array = (np.arange(40 * 2048) % 7).astype(np.int8)  # 40 chunks: parts of 32 and 8
    header, data = payload(array)
    roots = part_roots(array)
    for bad, reason in [
        (part_calldata(header, data, 2), "availability: part out of range"),
        (part_calldata(header, data, 0)[:-1], "availability: data is not the part's whole chunks"),
        (part_calldata(header, data, 1) + bytes(CHUNK), "availability: data is not the part's whole chunks"),
        (part_calldata(bytes([5]) + header[1:], data, 0), "availability: not a canonical header"),
    ]:
        with pytest.raises(Refused, match=reason):
            _raw(availability, bad)
    # non-zero padding in the last part: 8,190 int8 elements leave two padding bytes
    short = (np.arange(32 * 2048 + 8190) % 5).astype(np.int8)
    sh, sd = payload(short)
    tampered = part_calldata(sh, sd, 1)[:-1] + b"\x01"
    with pytest.raises(Refused, match="availability: padding is not zero"):
        _raw(availability, tampered)
    _raw(availability, part_calldata(header, data, 0))
    with boa.reverts("availability: part not published"):
        availability.assemble(header, roots)  # part 1 is missing
    _raw(availability, part_calldata(header, data, 1))
    with boa.reverts("availability: wrong number of parts"):
        availability.assemble(header, roots[:1])
    with boa.reverts("availability: wrong number of parts"):
        availability.assemble(header, [*roots, roots[0]])
    with boa.reverts("availability: part not published"):
        availability.assemble(header, roots[::-1])  # each root under its own index only
    other = bytes([3, 1]) + (40 * 2048 + 1).to_bytes(4, "big") + bytes(26)  # another size, the same two parts
    with boa.reverts("availability: part not published"):
        availability.assemble(other, roots)
    with boa.reverts("availability: part not published"):  # no part of a non-canonical header exists
        availability.assemble(header[:-1] + b"\x01", roots)
    huge = bytes([3, 1]) + (2**26 + 1).to_bytes(4, "big") + bytes(26)  # 64 MiB + 1 byte
    with boa.reverts("availability: tensor too large"):
        availability.assemble(huge, roots)
    with pytest.raises(Refused, match="availability: tensor too large"):
        _raw(availability, part_calldata(huge, data, 0))
    assert not availability.available(commit_tensor(array))
    assert availability.assemble(header, roots) == commit_tensor(array)


def test_fetch_tensor__reassembles_a_tensor_published_in_parts():
    """On the in-process chain: a 720,000-byte tensor goes out in 11 transactions of at most
    64 KiB of data and an assembly; it is read back from those transactions' calldata and
    checked against its commitment; a part already there is not sent again."""
    from verifier.court.chain import Chain, deploy_suite
    from verifier.market.availability import in_parts, publish_tensor

    chain = Chain.embedded()
    deployment = deploy_suite(chain)
    contract = deployment.contracts(chain)["Availability"]
    array = np.arange(300 * 300, dtype=np.int64).reshape(300, 300) * 7919 - 10**9
    assert in_parts(payload(array)[1]) and not in_parts(payload(array[:10])[1])
    receipts = publish_tensor(chain, contract, array)
    assert len(receipts) == 12 and all(r["status"] == 1 for r in receipts)
    got = fetch_tensor(chain.w3, contract, commit_tensor(array), deployment.block)
    assert got.dtype == np.int64 and np.array_equal(got, array)
    again = publish_tensor(chain, contract, array)
    assert len(again) == 1  # every part is there: only the (idempotent) assembly
