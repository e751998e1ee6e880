"""The library against a real `quorate dev` node."""
from __future__ import annotations

import concurrent.futures

import pytest

import quorate
from quorate import tx


def funded(dev, i):
    return quorate.Key.load(dev.key_file(i))


def test_a_transfer_commits_once_and_submitting_it_again_is_not_an_error(dev):
    with quorate.Node(dev.url) as node:
        status = node.status()
        sender, receiver = funded(dev, 0), quorate.Key.generate()
        body = tx.transfer(status.chain_id, sender.address, node.account(sender.address).next_nonce,
                           status.params.transfer_fuel, receiver.address, 25)
        signed = tx.sign(body, sender)
        outcome = node.submit_and_wait(signed, timeout_s=60)
        assert outcome.succeeded
        assert outcome.tx_hash == tx.tx_hash(signed.body)
        assert node.account(receiver.address).account.balance == 25
        # The same transaction again (a retry after a lost answer): its hash, not an error,
        # and it is included once.
        assert node.submit(signed) == outcome.tx_hash
        assert node.wait(outcome.tx_hash).height == outcome.height
        assert node.account(receiver.address).account.balance == 25


def test_refusals_are_typed_and_change_nothing(dev):
    with quorate.Node(dev.url) as node:
        status = node.status()
        sender = funded(dev, 1)
        before = node.account(sender.address)
        wrong = tx.transfer("another-chain", sender.address, before.next_nonce,
                            status.params.transfer_fuel, quorate.Key.generate().address, 1)
        with pytest.raises(quorate.Refused) as e:
            node.submit(tx.sign(wrong, sender))
        assert e.value.code == "WRONG_CHAIN"
        stranger = quorate.Key.generate()
        forged = tx.transfer(status.chain_id, sender.address, before.next_nonce,
                             status.params.transfer_fuel, stranger.address, 1)
        with pytest.raises(quorate.Refused) as e:
            node.submit(tx.sign(forged, stranger))
        assert e.value.code == "SIGNER_MISMATCH"
        after = node.account(sender.address)
        assert (after.account, after.next_nonce) == (before.account, before.next_nonce)


def test_an_unknown_hash_is_an_unknown_outcome_not_a_failure(dev):
    with quorate.Node(dev.url) as node:
        with pytest.raises(quorate.OutcomeUnknown) as e:
            node.wait(bytes(32), timeout_s=1.0)
        assert e.value.tx_hash == bytes(32)
        assert e.value.waited >= 1.0


def test_an_unreachable_node_is_named_with_a_fix():
    with quorate.Node("http://127.0.0.1:1", timeout_s=3) as node:
        with pytest.raises(quorate.Unreachable) as e:
            node.status()
        assert "check the node runs" in e.value.fix


def test_twenty_threads_of_one_account_send_a_thousand_transfers_without_gap_or_reuse(dev):
    """Issue 26: 1,000 transfers from 20 concurrent threads through the nonce manager, each
    committed once, in its own place, and the account's nonce moved by exactly 1,000."""
    with quorate.Node(dev.url) as node:
        status = node.status()
        sender, receiver = funded(dev, 2), quorate.Key.generate()
        start = node.account(sender.address).next_nonce
        nonces = quorate.NonceManager(node, sender.address)

        def send(_):
            hashes = []
            for _ in range(50):
                nonce = nonces.lease()
                body = tx.transfer(status.chain_id, sender.address, nonce,
                                   status.params.transfer_fuel, receiver.address, 1)
                hashes.append(node.submit(tx.sign(body, sender)))
            return hashes

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            hashes = [h for batch in pool.map(send, range(20)) for h in batch]
        assert len(set(hashes)) == 1_000
        outcomes = [node.wait(h, timeout_s=120) for h in hashes]
        assert all(o.succeeded for o in outcomes)
        assert len({(o.height, o.index) for o in outcomes}) == 1_000, "each in its own place"
        assert node.account(sender.address).account.nonce == start + 1_000
        assert node.account(receiver.address).account.balance == 1_000


def test_a_two_of_three_account_is_co_signed_through_bytes(dev):
    with quorate.Node(dev.url) as node:
        status = node.status()
        funder = funded(dev, 3)
        a, b, c = (quorate.Key.generate() for _ in range(3))
        key_set = quorate.KeySet([(k.public_key, 1) for k in (a, b, c)],
                                 quorate.Thresholds(base=2, key_management=3))
        address = key_set.address
        fund = tx.transfer(status.chain_id, funder.address,
                           node.account(funder.address).next_nonce,
                           status.params.transfer_fuel, address, 1_000_000)
        assert node.submit_and_wait(tx.sign(fund, funder)).succeeded
        receiver = quorate.Key.generate()
        body = tx.transfer(status.chain_id, address, 0, status.params.transfer_fuel,
                           receiver.address, 10, key_set=key_set)
        # a signs and passes the bytes on; b checks them and adds its signature.
        first = tx.sign(body, a).SerializeToString()
        passed_on = quorate.v1.types_pb2.Transaction.FromString(first)
        assert tx.check_signatures(passed_on) == [a.public_key]
        one = tx.sign(body, a)
        with pytest.raises(quorate.Refused) as e:
            node.submit(one)
        assert e.value.code == "INSUFFICIENT_WEIGHT"
        both = tx.cosign(first, b)
        with pytest.raises(quorate.BadInput):
            tx.cosign(both, b)
        outcome = node.submit_and_wait(both)
        assert outcome.succeeded
        assert node.account(receiver.address).account.balance == 10
        assert node.account(address).HasField("key_set")


def test_the_other_system_contracts_through_their_typed_methods(dev):
    """Device permissions (a call, then a query), certificates and credit escrow (queries):
    arguments encoded and results decoded through each contract's interface."""
    with quorate.Node(dev.url) as node:
        status = node.status()
        owner = funded(dev, 1)
        devices = quorate.system.contract("device-permissions")
        device_id = "door-" + quorate.Key.generate().address.hex()[:8]
        body = tx.body(status.chain_id, owner.address, node.account(owner.address).next_nonce,
                       10_000_000)
        body.call.CopyFrom(devices.call("register", devices.args("register", device=device_id)))
        done = node.submit_and_wait(tx.sign(body, owner))
        assert done.succeeded, done.receipt.error
        assert devices.result("register", done.receipt.return_data).id == device_id
        device = devices.query(node, "device", device=device_id)
        assert device.owner == owner.address
        authorities = quorate.system.contract("certificates").query(node, "authorities")
        assert authorities.admin or list(authorities.authorities)
        escrow = quorate.system.contract("credit-escrow")
        target = escrow.query(node, "target_address", debtor_key=owner.public_key,
                              creditor_key=quorate.Key.generate().public_key)
        assert len(target.address) == 20
        with pytest.raises(quorate.BadInput):
            devices.args("register", no_such_field=1)
