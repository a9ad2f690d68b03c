// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {MarketFixture, PairTree} from "./MarketFixture.sol";

/// @notice Scale bounds as assertions, at 1,000 pairs (measured: open 9.0k/pair; settle 5.1k/pair when
///         every pair reported, 32.7k/pair when every teacher is a no-show). The issue's 12k/pair
///         target for open + settle is not met yet (14.1k): see docs/threat-model.md, "Gas".
contract KnexaMarketGasTest is MarketFixture {
    uint256 internal constant PAIRS = 1000;

    function setUp() public {
        _deploy();
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.maxPairsPerRound = uint16(PAIRS);
        vm.prank(ADMIN);
        market.setParameters(p);
        for (uint256 i = 0; i <= PAIRS; ++i) {
            _register(address(uint160(0x10000 + i)), 2 ether);
        }
    }

    function _ringPairs() internal pure returns (address[] memory teachers, address[] memory students) {
        teachers = new address[](PAIRS);
        students = new address[](PAIRS);
        for (uint256 i = 0; i < PAIRS; ++i) {
            teachers[i] = address(uint160(0x10000 + i));
            students[i] = address(uint160(0x10000 + i + 1));
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
        (address[] memory teachers, address[] memory students) = _ringPairs();
        pairs = PairTree.pack(teachers, students);
        vm.prank(MATCHMAKER);
        uint256 before = gasleft();
        market.openRound(1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
        openGas = before - gasleft() + 21_000 + pairs.length * 16; // + base and calldata, as on chain
    }

    /// @dev The normal case: every pair reported (settled in the student's own transaction).
    function test_ThousandPairRoundAllReportedWithinBound() public {
        (bytes memory pairs, uint256 openGas) = _openThousand();
        (address[] memory teachers, address[] memory students) = _ringPairs();
        bytes32[][] memory levels = _levels(PairTree.leaves(market, 1, teachers, students));
        for (uint256 i = 0; i < PAIRS; ++i) {
            bytes32[] memory proof = _fastProof(levels, i);
            vm.prank(teachers[i]);
            market.publishBundle(1, i, students[i], BUNDLE, proof);
            vm.prank(students[i]);
            market.reportGain(1, i, teachers[i], 0.01e18, ADAPTER, proof);
        }
        _rollTo(height + 6);
        uint256 before = gasleft();
        market.settleRound(1, pairs);
        uint256 settleGas = before - gasleft() + 21_000 + pairs.length * 16;
        assertLe(openGas + settleGas, 30_000_000, "one 30M block");
        assertLe((openGas + settleGas) / PAIRS, 14_500, "open + settle <= 14.5k gas per pair");
    }

    /// @dev The worst case, every teacher a no-show: each slash writes the offender's word and a fresh
    ///      withdrawable slot of its student (22.1k). Bound asserted: open in one block, settle in
    ///      one more (32.7M gas: just over one 30M block today).
    function test_ThousandPairRoundAllNoShowsFitsTwoBlocks() public {
        (bytes memory pairs, uint256 openGas) = _openThousand();
        _rollTo(height + 6);
        uint256 before = gasleft();
        market.settleRound(1, pairs);
        uint256 settleGas = before - gasleft() + 21_000 + pairs.length * 16;
        assertLe(openGas, 30_000_000, "open fits one block");
        assertLe(settleGas / PAIRS, 33_000, "settle of a no-show <= 33k gas");
        assertLe(openGas + settleGas, 2 * 30_000_000, "two 30M blocks");
    }

    function test_RegisterCostsAtMost130k() public {
        vm.deal(STRANGER, 2 ether);
        vm.prank(STRANGER);
        uint256 before = gasleft();
        market.register{value: 1 ether}("stranger", PROFILE, KEY);
        assertLe(before - gasleft() + 21_000 + 16 * 300, 130_000, "register <= 130k");
    }
}
