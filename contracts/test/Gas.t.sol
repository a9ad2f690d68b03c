// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {KnexaMarket} from "../src/KnexaMarket.sol";
import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {MarketFixture, PairTree} from "./MarketFixture.sol";

/// @notice The scale targets as assertions, at 1,000 pairs, with the gas a transaction would pay on
///         chain: 21,000 + calldata (4 per zero byte, 16 per other byte) + what the call itself used
///         (`vm.lastCallGas`, so the test contract's own memory does not count). Refunds are ignored,
///         which overstates a little. bench/gas.py measures the same on a real Anvil node.
contract KnexaMarketGasTest is MarketFixture {
    uint256 internal constant PAIRS = 1000;
    uint256 internal constant BLOCK = 30_000_000;

    event log_named_uint(string key, uint256 val);

    function setUp() public {
        _deploy();
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.maxPairsPerRound = uint16(PAIRS);
        vm.prank(ADMIN);
        market.setParameters(p);
        for (uint256 i = 0; i <= PAIRS; ++i) {
            _register(_member(i), 2 ether);
        }
    }

    /// @dev Addresses with few zero bytes, as real ones (zero calldata bytes would look cheap).
    function _member(uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("member", i)))));
    }

    function _chainPairs() internal pure returns (address[] memory teachers, address[] memory students) {
        teachers = new address[](PAIRS);
        students = new address[](PAIRS);
        for (uint256 i = 0; i < PAIRS; ++i) {
            teachers[i] = _member(i);
            students[i] = _member(i + 1);
        }
    }

    /// @dev Send `data` to the market as `from`; the gas the transaction would cost on chain.
    function _send(address from, bytes memory data) internal returns (uint256 gas) {
        vm.prank(from);
        (bool ok, bytes memory returned) = address(market).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
        gas = 21_000 + vm.lastCallGas().gasTotalUsed;
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    /// @dev All tree levels once, so that each proof is a lookup (PairTree.proof rebuilds the tree).
    function _levels(bytes32[] memory leaves) internal pure returns (bytes32[][] memory levels) {
        levels = new bytes32[][](20);
        levels[0] = leaves;
        uint256 depth = 0;
        while (levels[depth].length > 1) {
            bytes32[] memory nodes = levels[depth];
            uint256 n = nodes.length;
            bytes32[] memory parents = new bytes32[]((n + 1) / 2);
            for (uint256 j = 0; j < n / 2; ++j) {
                (bytes32 a, bytes32 b) = (nodes[2 * j], nodes[2 * j + 1]);
                parents[j] = a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
            }
            if (n % 2 == 1) parents[n / 2] = nodes[n - 1];
            levels[++depth] = parents;
        }
        assembly ("memory-safe") {
            mstore(levels, add(depth, 1))
        }
    }

    function _fastProof(bytes32[][] memory levels, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory buffer = new bytes32[](levels.length);
        uint256 count;
        for (uint256 d = 0; d + 1 < levels.length; ++d) {
            if ((index ^ 1) < levels[d].length) buffer[count++] = levels[d][index ^ 1];
            index /= 2;
        }
        proof = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            proof[i] = buffer[i];
        }
    }

    function _openThousand() internal returns (bytes memory pairs, uint256 openGas) {
        (address[] memory teachers, address[] memory students) = _chainPairs();
        pairs = PairTree.pack(teachers, students);
        openGas = _send(
            MATCHMAKER,
            abi.encodeCall(
                KnexaMarket.openRound, (1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5))
            )
        );
        emit log_named_uint("openRound", openGas);
    }

    function _settle(bytes memory pairs) internal returns (uint256 settleGas) {
        _rollTo(height + 6);
        settleGas = _send(STRANGER, abi.encodeCall(KnexaMarket.settleRound, (1, pairs)));
        emit log_named_uint("settleRound", settleGas);
        assertEq(market.unsettledPairs(1), 0, "finalized");
    }

    /// @dev The normal case: every pair reported (settled in the student's own transaction), so
    ///      settleRound needs no pair list. Target: open + settle <= 12k gas per pair.
    function test_ThousandPairRoundAllReportedWithinBound() public {
        (, uint256 openGas) = _openThousand();
        (address[] memory teachers, address[] memory students) = _chainPairs();
        bytes32[][] memory levels = _levels(PairTree.leaves(market, 1, teachers, students));
        uint256 reportGas;
        for (uint256 i = 0; i < PAIRS; ++i) {
            bytes32[] memory proof = _fastProof(levels, i);
            vm.prank(teachers[i]);
            market.publishBundle(1, i, students[i], BUNDLE, proof);
            uint256 gas = _send(
                students[i], abi.encodeCall(KnexaMarket.reportGain, (1, i, teachers[i], 0.01e18, ADAPTER, proof))
            );
            if (gas > reportGas) reportGas = gas;
        }
        emit log_named_uint("reportGain (most)", reportGas);
        assertEq(market.unsettledPairs(1), 0, "every pair settled by its report");
        uint256 settleGas = _settle("");
        assertLe(settleGas, 50_000, "nothing left: O(1) settlement");
        assertLe(openGas + settleGas, BLOCK, "one 30M block");
        assertLe((openGas + settleGas) / PAIRS, 12_000, "open + settle <= 12k gas per pair");
    }

    /// @dev A worst case: every teacher a no-show, every student a beneficiary never owed anything
    ///      before. Target: the whole round (open and settle) in one 30M block.
    function test_ThousandPairRoundAllNoShowsFitsOneBlock() public {
        (bytes memory pairs, uint256 openGas) = _openThousand();
        uint256 settleGas = _settle(pairs);
        assertEq(market.pendingWithdrawal(_member(1)), 0.2 ether, "each student got 10% of its teacher's stake");
        assertLe(openGas + settleGas, BLOCK, "open + settle in one 30M block");
    }

    /// @dev The other worst case: every bundle delivered, no student reports (fee and slash to the
    ///      teacher, both reputations move). Target: open and settle in one 30M block.
    function test_ThousandPairRoundAllUnreportedFitsOneBlock() public {
        (bytes memory pairs, uint256 openGas) = _openThousand();
        (address[] memory teachers, address[] memory students) = _chainPairs();
        bytes32[][] memory levels = _levels(PairTree.leaves(market, 1, teachers, students));
        for (uint256 i = 0; i < PAIRS; ++i) {
            vm.prank(teachers[i]);
            market.publishBundle(1, i, students[i], BUNDLE, _fastProof(levels, i));
        }
        uint256 settleGas = _settle(pairs);
        assertLe(openGas + settleGas, BLOCK, "open + settle in one 30M block");
    }

    function test_RegisterCostsAtMost130k() public {
        vm.deal(STRANGER, 2 ether);
        vm.prank(STRANGER);
        market.register{value: 1 ether}("stranger-organization", PROFILE, KEY);
        uint256 gas = 21_000 + vm.lastCallGas().gasTotalUsed;
        bytes memory data = abi.encodeCall(OrganizationRegistry.register, ("stranger-organization", PROFILE, KEY));
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
        emit log_named_uint("register", gas);
        assertLe(gas, 130_000, "register <= 130k");
    }
}
