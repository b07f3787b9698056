"""The in-process chain: py-evm through eth-tester, with two costs of eth-tester taken out.

eth-tester answers eth_getLogs by reading every receipt of every block in the range, and finds
each receipt by walking the chain back from its head, so a read from the deployment block
costs O(blocks x transactions) and the demo spent half its time there. `LogIndex` reads each
mined block's logs once and filters them with eth-tester's own matcher; a snapshot revert
forgets them. And eth-tester estimates gas by a binary search of some twenty executions, where
on a chain that mines one transaction per block an unused gas limit costs nothing:
`EmbeddedProvider.send_gas` is the gas a send gives instead (what a dev node's default is).
"""

from __future__ import annotations

from typing import Any

from web3 import EthereumTesterProvider


class LogIndex:
    """eth_getLogs over mined blocks, each block's logs read from its receipts once."""

    def __init__(self) -> None:
        self.blocks: dict[int, list[dict[str, Any]]] = {}  # block number -> its raw log entries

    def forget(self) -> None:
        self.blocks.clear()

    def _block(self, tester: Any, number: int) -> list[dict[str, Any]]:
        entries = self.blocks.get(number)
        if entries is None:
            entries = [
                tester.normalizer.normalize_inbound_log_entry(log)
                for tx_hash in tester.get_block_by_number(number)["transactions"]
                for log in tester.get_transaction_receipt(tx_hash)["logs"]
            ]
            self.blocks[number] = entries
        return entries

    def get_logs(self, tester: Any, params: Any) -> list[dict[str, Any]]:
        from eth_tester.utils.filters import check_if_log_matches

        query = dict(params[0])
        lo, hi = query.get("from_block", "latest"), query.get("to_block", "latest")
        if set(query) - {"from_block", "to_block", "address", "topics"} or not (isinstance(lo, int) and isinstance(hi, int)):
            return list(tester.get_logs(**query))  # block tags or a block hash: eth-tester's own path
        head = int(tester.get_block_by_number("latest")["number"])
        if hi > head:
            return list(tester.get_logs(**query))  # not mined yet: eth-tester says what it says
        filt = {"from_block": lo, "to_block": hi, "address": query.get("address"), "topics": query.get("topics")}
        tester.validator.validate_inbound_filter_params(**filt)
        raw_lo, raw_hi, raw_addresses, raw_topics = tester.normalizer.normalize_inbound_filter_params(**filt)
        matches = {"from_block": raw_lo, "to_block": raw_hi, "addresses": raw_addresses, "topics": raw_topics}
        return [
            tester.normalizer.normalize_outbound_log_entry(entry)
            for number in range(lo, hi + 1)
            for entry in self._block(tester, number)
            if check_if_log_matches(entry, **matches)
        ]


class EmbeddedProvider(EthereumTesterProvider):
    """eth-tester's provider with the log index, and the gas limit sends give on this chain."""

    def __init__(self) -> None:
        from web3.providers.eth_tester.defaults import API_ENDPOINTS

        self.log_index = LogIndex()
        endpoints = {namespace: dict(calls) for namespace, calls in API_ENDPOINTS.items()}
        endpoints["eth"]["getLogs"] = self.log_index.get_logs
        revert = endpoints["evm"]["revert"]

        def revert_and_forget(tester: Any, params: Any) -> Any:
            self.log_index.forget()
            return revert(tester, params)

        endpoints["evm"]["revert"] = revert_and_forget
        super().__init__(api_endpoints=endpoints)
        latest = self.ethereum_tester.get_block_by_number("latest")
        self.send_gas = int(latest["gas_limit"])
