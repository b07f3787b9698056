"""The bindings against a real node: anvil, over JSON-RPC, with signed transactions."""

from __future__ import annotations

import pytest

from verifier.court.chain import Chain, ChainError, Deployment, deploy_suite


def test_anvil__version_is_pinned(anvil) -> None:
    import subprocess

    from tests.conftest import ANVIL_VERSION, anvil_binary

    out = subprocess.run([anvil_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert f"anvil Version: {ANVIL_VERSION}" in out


def test_anvil__deploy_and_record(anvil, tmp_path) -> None:
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    assert set(d.addresses) >= {"Tasks", "Game", "Referee", "Token"}
    d.save(tmp_path / "deployments.json")
    again = Deployment.load(chain.chain_id, tmp_path / "deployments.json")
    assert again.addresses == d.addresses and again.block == d.block
    # Nothing of the suite exists before its block: its Token is created in it or later.
    assert not chain.w3.eth.get_code(d.addresses["Token"], block_identifier=d.block - 1)
    game = d.contracts(chain)["Game"]
    assert game.functions.referee().call() == d.addresses["Referee"]
    with pytest.raises(ChainError) as e:
        Deployment.load(999, tmp_path / "deployments.json")
    assert "bisectml deploy" in str(e.value)


def test_anvil__no_key__refused(anvil, monkeypatch) -> None:
    monkeypatch.delenv("BISECTML_PRIVATE_KEY", raising=False)
    with pytest.raises(ChainError) as e:
        Chain.connect(anvil.url)
    assert "--key-file" in str(e.value)


def test_anvil__unreachable_node__one_line_error() -> None:
    with pytest.raises(ChainError) as e:
        Chain.connect("http://127.0.0.1:9", key="0x" + "11" * 32)
    assert "cannot reach" in str(e.value) and "\n" not in str(e.value)


def test_deployment__first_format_loads_with_block_0(tmp_path) -> None:
    import json

    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"31337": {"Tasks": "0x" + "11" * 20}}))
    d = Deployment.load(31337, path)
    assert d.addresses == {"Tasks": "0x" + "11" * 20} and d.block == 0


def test_deployment_logs__read_in_ranges_from_its_block(anvil, monkeypatch) -> None:
    import verifier.court.chain as chain_mod

    owner = Chain.connect(anvil.url, key=anvil.keys[0])
    token = owner.deploy("Token")
    for i in range(7):  # one Transfer (mint) per block
        owner.send(token.functions.mint(owner.account, i + 1))
    event = token.events.Transfer()
    whole = event.get_logs(from_block=0)
    assert len(whole) == 7
    first = whole[0]["blockNumber"]
    requests = []
    real = event.get_logs

    def counted(**kw):  # noqa: ANN003, ANN202
        requests.append((kw["from_block"], kw["to_block"]))
        return real(**kw)

    monkeypatch.setattr(event, "get_logs", counted)
    monkeypatch.setattr(chain_mod, "LOG_RANGE", 3)
    d = Deployment(owner.chain_id, {"Token": token.address}, block=first)
    got = d.logs(event)
    assert [g["args"]["value"] for g in got] == [1, 2, 3, 4, 5, 6, 7]
    assert requests[0][0] == first and all(hi - lo < 3 for lo, hi in requests)  # never from 0, never wider
    assert [g["args"]["value"] for g in d.logs(event, {"receiver": owner.account}, first + 2, first + 4)] == [3, 4, 5]


def _minted_twice(anvil):  # noqa: ANN001, ANN202
    """A suite on anvil, its token minted 7 then 5 to the deployer: the blocks before and after the second mint."""
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    contracts = deploy_suite(chain).contracts(chain)
    chain.send(contracts["Token"].functions.mint(chain.account, 7))
    before = chain.w3.eth.block_number
    chain.send(contracts["Token"].functions.mint(chain.account, 5))
    return chain, contracts, before, chain.w3.eth.block_number


def test_read__decodes_as_web3_does_at_the_block_asked(anvil) -> None:
    """Chain.read (the daemons' lean eth_call) answers what web3's own call answers: a struct,
    several outputs, an address, bytes; at the block it is asked for, not the head."""
    chain, c, before, head = _minted_twice(anvil)
    token, tasks = c["Token"], c["Tasks"]
    reads = [
        token.functions.balanceOf(chain.account),
        token.functions.owner(),
        token.functions.name(),
        tasks.functions.tasks(0),
        tasks.functions.claims(0),
        tasks.functions.challenges(0),
        c["Game"].functions.referee(),
    ]
    for fn in reads:
        for block in (before, head):
            assert chain.read(fn, block) == fn.call(block_identifier=block), fn.fn_name
    assert chain.read(token.functions.balanceOf(chain.account), before) == 7
    assert chain.read(token.functions.balanceOf(chain.account), head) == 12
    with pytest.raises(ChainError) as e:  # a node's error is one line naming the read
        chain.read(token.functions.balanceOf(chain.account), head + 1000)
    assert "balanceOf" in str(e.value) and "\n" not in str(e.value)


def test_read_many__one_batch_answers_as_read_does__chunked__and_without_batches(anvil, monkeypatch) -> None:
    import verifier.court.chain as chain_mod

    chain, c, before, head = _minted_twice(anvil)
    token, tasks = c["Token"], c["Tasks"]
    fns = [token.functions.balanceOf(chain.account), token.functions.name(), tasks.functions.tasks(0),
           tasks.functions.claims(1), tasks.functions.challenges(2), tasks.functions.task_count()]  # fmt: skip
    provider = chain.w3.provider
    batches = []
    real = provider.make_batch_request

    def counted(requests):  # noqa: ANN001, ANN202
        batches.append(len(requests))
        return real(requests)

    monkeypatch.setattr(provider, "make_batch_request", counted)
    monkeypatch.setattr(chain_mod, "READ_BATCH", 4)
    for block in (before, head):
        assert chain.read_many(fns, block) == [chain.read(fn, block) for fn in fns]
    assert batches == [4, 2, 4, 2]
    assert chain.read_many([fns[0]], before) == [7] and chain.read_many([fns[0]], head) == [12]
    with pytest.raises(ChainError) as e:  # a refused call is one line naming the read
        chain.read_many(fns, head + 1000)
    assert "balanceOf" in str(e.value) and "\n" not in str(e.value)
    nowhere = chain.w3.eth.contract(address="0x" + "00" * 19 + "99", abi=token.abi).functions.name()
    for read in (lambda: chain.read(nowhere, head), lambda: chain.read_many([fns[0], nowhere], head)):
        with pytest.raises(ChainError) as e:  # no code there: an empty answer, one line
            read()
        assert "name: the node's answer does not decode" in str(e.value) and "\n" not in str(e.value)
    # a node that takes no batches answers one error object: read call by call instead
    monkeypatch.setattr(provider, "make_batch_request", lambda requests: {"jsonrpc": "2.0", "error": {"message": "no batches"}})
    assert chain.read_many(fns, head) == [chain.read(fn, head) for fn in fns]


def test_view_prefetch__whole_tick_in_three_batches__then_no_more_requests(anvil, monkeypatch) -> None:
    from verifier.court.play import Court
    from verifier.daemon.records import View

    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    court = Court(chain, deploy_suite(chain))
    lazy = View(court)
    want = ([lazy.challenge(i) for i in range(4)], [lazy.claim(i) for i in range(6)], [lazy.task(i) for i in range(3)])
    provider = chain.w3.provider
    singles, batches = [], []
    real_single, real_batch = provider.make_request, provider.make_batch_request
    monkeypatch.setattr(provider, "make_request", lambda method, params: singles.append(method) or real_single(method, params))
    monkeypatch.setattr(provider, "make_batch_request", lambda requests: batches.append(len(requests)) or real_batch(requests))
    v = View(court)
    v.prefetch(tasks=[2, 1], claims=range(6), challenges=range(4))
    assert "eth_call" not in singles and len(batches) <= 3 and sum(batches) == 4 + 6 + 3
    got = ([v.challenge(i) for i in range(4)], [v.claim(i) for i in range(6)], [v.task(i) for i in range(3)])
    assert got == want and "eth_call" not in singles  # every record came from the batches
    lazy_reads = View(court)
    lazy_reads.claim(5)
    assert singles.count("eth_call") == 1  # the count sees a lazy read: the assertions above can fail
