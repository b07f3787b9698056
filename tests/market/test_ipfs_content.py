"""Content over IPFS (docs/SPEC.md 8.1): published through a real node's RPC API (js-ipfs on
127.0.0.1, the `ipfs` fixture), fetched through its trustless gateway by a store with an empty
cache, and every byte checked against the CID. Misbehaving gateways and nodes are small local
HTTP servers written here: each refusal is one line and keeps nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from verifier.court import devnet
from verifier.market.content import (
    ContentError,
    ContentStore,
    cid_of,
    decode_dataset,
    encode_dataset,
)
from verifier.market.ipfs import RAW_BLOCK, IpfsContentStore, content_store

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**18

# A dataset at the market's limits (R * F = 1024 * 256): 263,180 bytes, over the 256 KiB that
# `ipfs add` would otherwise cut into chunks, so the single-block publishing path is exercised.
ROWS, FEATURES = 1024, 256


def _dataset(seed: int, rows: int = ROWS, features: int = FEATURES) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, features), dtype=np.int8)
    y = rng.choice(np.array([-1, 1], np.int8), rows)
    return encode_dataset(x, y)


Answer = Callable[[str, str, dict[str, str]], tuple[int, bytes]]  # (method, path, headers) -> (status, body)


@contextmanager
def http_server(answer: Answer) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    """A tiny HTTP server on 127.0.0.1 answering every request with `answer`: (its URL, the
    requests it saw). Shut down and closed on exit."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append((self.command, self.path, headers))
            status, body = answer(self.command, self.path, headers)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reply

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _bisectml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`bisectml ARGS` as a separate process, with this checkout's code."""
    cmd = [sys.executable, "-m", "cli", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and text.endswith("."), text
    return text


# -- a real node -------------------------------------------------------------------------------


def test_the_node_is_the_pinned_js_ipfs():
    from tests.conftest import IPFS_VERSION

    pinned = json.loads((ROOT / ".ci" / "package.json").read_text())["dependencies"]["ipfs"]
    installed = json.loads((ROOT / ".ci" / "node_modules" / "ipfs" / "package.json").read_text())["version"]
    assert pinned == installed == IPFS_VERSION


def test_published_through_the_api_is_fetched_through_the_gateway(ipfs, tmp_path):
    data = _dataset(1)
    assert len(data) > 256 * 1024
    publisher = IpfsContentStore(tmp_path / "publisher", api=ipfs.api)
    cid = publisher.put(data)
    assert cid == cid_of(data)
    assert ipfs.rpc("pin/ls", arg=cid)["Keys"][cid]["Type"] == "recursive"  # pinned, not only stored
    assert (tmp_path / "publisher" / cid).read_bytes() == data  # the publisher keeps its copy

    reader = IpfsContentStore(tmp_path / "reader", gateway=ipfs.gateway)
    assert not reader.has(cid)
    assert reader.get(cid) == data
    assert reader.has(cid) and (tmp_path / "reader" / cid).read_bytes() == data
    x, y = decode_dataset(reader.get(cid))
    assert x.shape == (ROWS, FEATURES) and y.shape == (ROWS,)

    # fetched once: the cache answers even with the gateway gone
    offline = IpfsContentStore(tmp_path / "reader", gateway=f"http://127.0.0.1:{devnet.free_port()}", timeout=2)
    assert offline.get(cid) == data


def test_the_node_api_alone_publishes_and_fetches(ipfs, tmp_path):
    data = _dataset(2, rows=16, features=4)
    cid = IpfsContentStore(tmp_path / "a", api=ipfs.api).put(data)
    assert IpfsContentStore(tmp_path / "b", api=ipfs.api).get(cid) == data


def test_a_damaged_cache_entry_is_fetched_again(ipfs, tmp_path):
    data = _dataset(3, rows=8, features=8)
    cid = IpfsContentStore(tmp_path / "a", api=ipfs.api).put(data)
    reader = IpfsContentStore(tmp_path / "b", gateway=ipfs.gateway)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / cid).write_bytes(b"damaged")
    assert reader.get(cid) == data and (tmp_path / "b" / cid).read_bytes() == data


def test_content_the_network_lacks_times_out_in_one_line(ipfs, tmp_path):
    # js-ipfs waits for peers that never come (it is offline): the timeout is the answer
    missing = cid_of(b"never published")
    with pytest.raises(ContentError) as e:
        IpfsContentStore(tmp_path, gateway=ipfs.gateway, timeout=1).get(missing)
    assert f"did not fetch {missing} within 1 s" in _one_line(e)
    assert not (tmp_path / missing).exists()


# -- gateways and nodes that misbehave (local stand-ins) ---------------------------------------


def test_a_gateway_serving_wrong_bytes_is_refused_and_nothing_is_kept(tmp_path):
    data = _dataset(4, rows=8, features=8)
    cid = cid_of(data)
    tampered = bytearray(data)
    tampered[-1] ^= 1
    with http_server(lambda method, path, headers: (200, bytes(tampered))) as (url, seen):
        store = IpfsContentStore(tmp_path, gateway=url)
        with pytest.raises(ContentError) as e:
            store.get(cid)
    assert f"do not hash to {cid}; refused and not kept" in _one_line(e)
    assert not store.has(cid) and not any(tmp_path.iterdir())
    # the request is the trustless gateway's: one raw block, asked for by CID
    method, path, headers = seen[0]
    assert (method, path) == ("GET", f"/ipfs/{cid}?format=raw") and headers["accept"] == RAW_BLOCK


def test_a_gateway_without_the_content_says_so(tmp_path):
    cid = cid_of(b"x")
    with http_server(lambda method, path, headers: (404, b"not found")) as (url, _), pytest.raises(ContentError) as e:
        IpfsContentStore(tmp_path, gateway=url).get(cid)
    assert f"does not have {cid} (HTTP 404)" in _one_line(e)


def test_a_node_that_names_the_file_otherwise_is_refused(tmp_path):
    other = cid_of(b"something else")
    answer = json.dumps({"Name": "f", "Hash": other, "Size": "1"}).encode()
    with http_server(lambda method, path, headers: (200, answer)) as (url, seen), pytest.raises(ContentError) as e:
        IpfsContentStore(tmp_path, api=url).put(b"data")
    assert f"named the file {other}, not {cid_of(b'data')}" in _one_line(e)
    method, path, _ = seen[0]
    assert method == "POST" and path.startswith("/api/v0/add?") and "raw-leaves=true" in path and "pin=true" in path
    assert not any(tmp_path.iterdir())


def test_an_unreachable_node_or_gateway_is_one_line(tmp_path):
    dead = f"http://127.0.0.1:{devnet.free_port()}"
    with pytest.raises(ContentError) as e:
        IpfsContentStore(tmp_path, api=dead).put(b"data")
    assert f"cannot reach {dead}" in _one_line(e) and "--ipfs-api" in str(e.value)
    with pytest.raises(ContentError) as e:
        IpfsContentStore(tmp_path, gateway=dead).get(cid_of(b"data"))
    assert f"cannot reach {dead}" in _one_line(e) and "--ipfs-gateway" in str(e.value)


def test_configuration_picks_the_store(tmp_path, monkeypatch):
    monkeypatch.delenv("BISECTML_IPFS_API", raising=False)
    monkeypatch.delenv("BISECTML_IPFS_GATEWAY", raising=False)
    assert type(content_store(tmp_path)) is ContentStore  # the default needs no network
    monkeypatch.setenv("BISECTML_IPFS_GATEWAY", "http://127.0.0.1:8080/")
    store = content_store(tmp_path)
    assert isinstance(store, IpfsContentStore) and store.gateway == "http://127.0.0.1:8080" and store.api is None
    with pytest.raises(ContentError) as e:
        store.put(b"data")  # a gateway only reads
    assert "--ipfs-api" in _one_line(e)
    with pytest.raises(ContentError) as e:
        content_store(tmp_path, ipfs_api="127.0.0.1:5001")
    assert "must be an http(s) URL" in _one_line(e)


# -- the command line --------------------------------------------------------------------------


def test_data_publish_over_ipfs_is_fetched_by_another_participant(anvil, ipfs, tmp_path):
    from verifier.court.chain import Chain, deploy_suite
    from verifier.market.client import MarketClient

    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    home = tmp_path / "home"
    d.save(home / "deployments.json")
    token = chain.contract("Token", d.addresses["Token"])
    chain.send(token.functions.mint(chain.with_key(anvil.keys[1]).account, 100 * TOKEN), "mint")
    key = tmp_path / "provider.key"
    key.write_text(anvil.keys[1] + "\n")
    key.chmod(0o600)
    rng = np.random.default_rng(5)
    x, y = rng.integers(-20, 20, (32, 8), dtype=np.int8), rng.choice(np.array([-1, 1], np.int8), 32)
    np.savez(tmp_path / "data.npz", features=x, labels=y)

    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")}
    env |= {"BISECTML_HOME": str(home), "BISECTML_RPC_URL": anvil.url}
    res = _bisectml(env, "data", "publish", str(tmp_path / "data.npz"), "--stake", "10", "--ipfs-api", ipfs.api,
                    "--key-file", str(key), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    published = json.loads(res.stdout)
    assert published["cid"] == cid_of(encode_dataset(x, y))
    assert ipfs.rpc("pin/ls", arg=published["cid"])["Keys"]

    # another participant, with nothing cached, gets it from the gateway and checks it on-chain
    reader = MarketClient(chain, d, IpfsContentStore(tmp_path / "elsewhere", gateway=ipfs.gateway))
    fx, fy = reader.dataset_arrays(published["dataset_id"])
    assert np.array_equal(fx, x) and np.array_equal(fy, y)

    # a bad --ipfs-api is refused in one line before anything is sent
    res = _bisectml(env, "data", "publish", str(tmp_path / "data.npz"), "--stake", "10", "--ipfs-api", "localhost:5001",
                    "--key-file", str(key))  # fmt: skip
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "must be an http(s) URL" in lines[0], res.stderr

    # the daemons take the same options: a bad gateway refuses the start, before the data dir
    res = _bisectml(env, "solver", "run", "--rpc-url", anvil.url, "--deployment", str(home / "deployments.json"),
                    "--key-file", str(key), "--data-dir", str(tmp_path / "solver"), "--ipfs-gateway", "localhost:8080",
                    "--max-ticks", "1")  # fmt: skip
    assert res.returncode == 2 and "--ipfs-gateway / BISECTML_IPFS_GATEWAY must be an http(s) URL" in res.stderr, res.stderr
    assert not (tmp_path / "solver").exists()
