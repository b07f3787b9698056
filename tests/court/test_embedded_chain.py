"""The in-process chain's log index answers eth_getLogs as eth-tester does, and forgets what a
snapshot revert undid; its sends give the block's gas limit instead of a binary search."""

from __future__ import annotations

from web3 import Web3

from verifier.court.chain import Chain

A, B = Web3.to_checksum_address("0x" + "0a" * 20), Web3.to_checksum_address("0x" + "0b" * 20)


def _tokens(chain: Chain):  # noqa: ANN202
    tokens = [chain.deploy("Token") for _ in range(2)]
    for i, token in enumerate(tokens):
        chain.send(token.functions.mint(chain.account, 100))
        for n, to in enumerate((A, B, A)):
            chain.send(token.functions.transfer(to, 10 + n + 5 * i))
    return tokens


def _both(chain: Chain, query: dict) -> tuple[list, list]:
    """What the index answers, and what eth-tester's own scan answers."""
    provider = chain.w3.provider
    indexed = chain.w3.eth.get_logs(query)
    plain = provider.ethereum_tester.get_logs(
        from_block=query["fromBlock"], to_block=query["toBlock"], address=query.get("address"), topics=query.get("topics")
    )
    return indexed, list(plain)


def test_log_index__matches_eth_testers_own_scan() -> None:
    chain = Chain.embedded()
    tokens = _tokens(chain)
    head = chain.w3.eth.block_number
    topic = "0x" + bytes(chain.w3.keccak(text="Transfer(address,address,uint256)")).hex()
    to_a = "0x" + "00" * 12 + A[2:].lower()
    queries = [
        {"fromBlock": 0, "toBlock": head},
        {"fromBlock": 3, "toBlock": head - 2},
        {"fromBlock": 0, "toBlock": head, "address": tokens[1].address},
        {"fromBlock": 0, "toBlock": head, "address": [t.address for t in tokens]},
        {"fromBlock": 0, "toBlock": head, "topics": [topic, None, to_a]},
        {"fromBlock": 0, "toBlock": head, "address": tokens[0].address, "topics": [[topic], None, [to_a, "0x" + "00" * 12 + B[2:].lower()]]},
    ]
    for query in queries:
        indexed, plain = _both(chain, query)
        assert len(indexed) == len(plain) > 0, query
        assert [(log["blockNumber"], log["logIndex"]) for log in indexed] == [
            (log["block_number"], log["log_index"]) for log in plain
        ], query
    # decoded through web3 as callers read them: the second token's three transfers, in order
    got = tokens[1].events.Transfer.get_logs(from_block=0, to_block=head, argument_filters={"receiver": A})
    assert [e.args.value for e in got] == [15, 17]


def test_log_index__forgets_blocks_a_snapshot_revert_undid() -> None:
    chain = Chain.embedded()
    token = chain.deploy("Token")
    chain.send(token.functions.mint(chain.account, 100))
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    chain.send(token.functions.transfer(A, 1))
    number = chain.w3.eth.block_number
    assert [e.args.value for e in token.events.Transfer.get_logs(from_block=number, to_block=number)] == [1]
    chain.w3.provider.make_request("evm_revert", [snapshot])
    chain.send(token.functions.transfer(B, 2))
    assert chain.w3.eth.block_number == number  # the same height, another block
    again = token.events.Transfer.get_logs(from_block=number, to_block=number)
    assert [(e.args.receiver, e.args.value) for e in again] == [(B, 2)]


def test_send__gives_the_blocks_gas_limit_and_pays_only_what_it_used() -> None:
    chain = Chain.embedded()
    token = chain.deploy("Token")
    receipt = chain.send(token.functions.mint(chain.account, 100))
    tx = chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["gas"] == chain.w3.eth.get_block("latest")["gasLimit"]
    assert 21_000 < receipt["gasUsed"] < 200_000
