"""One transaction per call from the Python library: `--clients` threads, each sending transfers
from its own funded account (key files `--keys`/account-{first..}.json), one Submit per
transaction, until `--txs` are accepted; then waits for every sender's last transaction.
Prints JSON: accepted, seconds to accept, seconds to commit, tx/s, acceptance latency."""
from __future__ import annotations

import argparse
import json
import threading
import time

import quorate
from quorate import tx


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--node", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--first", type=int, default=1)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--txs", type=int, default=20_000)
    a = p.parse_args()
    node = quorate.Node(a.node)
    status = node.status()
    keys = [quorate.Key.load(f"{a.keys}/account-{a.first + i}.json") for i in range(a.clients)]
    to = quorate.Key.generate().address
    per = a.txs // a.clients
    # Signed before the clock starts, as the Rust load generator does: the figure is the cost
    # of submitting and committing one transaction per call.
    work = []
    for key in keys:
        nonce = node.account(key.address).next_nonce
        work.append([tx.sign(tx.transfer(status.chain_id, key.address, nonce + k,
                                         status.params.transfer_fuel, to, 1), key)
                     for k in range(per)])
    latencies: list[float] = []
    last: list[bytes] = [b""] * a.clients
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sender(i: int) -> None:
        mine = []
        try:
            for signed in work[i]:
                t0 = time.perf_counter()
                last[i] = node.submit(signed)
                mine.append(time.perf_counter() - t0)
        except BaseException as e:  # reported after the run: a figure with errors is no figure
            with lock:
                errors.append(e)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    accepted = time.perf_counter() - started
    for h in last:
        node.wait(h, timeout_s=300)
    committed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    print(json.dumps({
        "library": "python", "clients": a.clients, "txs": n,
        "accept_s": round(accepted, 3), "commit_s": round(committed, 3),
        "tx_per_s": round(n / committed, 1),
        "accept_p50_ms": round(1000 * latencies[n // 2], 2),
        "accept_p99_ms": round(1000 * latencies[min(n - 1, n * 99 // 100)], 2),
    }))


if __name__ == "__main__":
    main()
