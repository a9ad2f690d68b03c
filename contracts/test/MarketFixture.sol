// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {KnexaMarket} from "../src/KnexaMarket.sol";
import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {TestBase} from "./Vm.sol";

/// @notice The pair tree, written a second time independently of the contract (for proofs in tests).
library PairTree {
    function leaves(KnexaMarket market, uint256 roundId, address[] memory teachers, address[] memory students)
        internal
        pure
        returns (bytes32[] memory out)
    {
        out = new bytes32[](teachers.length);
        for (uint256 i = 0; i < teachers.length; ++i) {
            out[i] = keccak256(bytes.concat(keccak256(abi.encode(roundId, i, teachers[i], students[i]))));
        }
        // the contract's own leaf function must agree with the standard double hash
        if (out.length > 0 && market.pairLeaf(roundId, 0, teachers[0], students[0]) != out[0]) revert("leaf");
    }

    function proof(bytes32[] memory level, uint256 index) internal pure returns (bytes32[] memory path) {
        bytes32[] memory buffer = new bytes32[](64);
        uint256 depth;
        bytes32[] memory nodes = new bytes32[](level.length);
        for (uint256 i = 0; i < level.length; ++i) {
            nodes[i] = level[i];
        }
        uint256 n = nodes.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) buffer[depth++] = nodes[sibling];
            uint256 half = n / 2;
            for (uint256 j = 0; j < half; ++j) {
                nodes[j] = Hashes.commutativeKeccak256(nodes[2 * j], nodes[2 * j + 1]);
            }
            if (n % 2 == 1) {
                nodes[half] = nodes[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
            index /= 2;
        }
        path = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            path[i] = buffer[i];
        }
    }

    /// @dev Linear in the pairs (a bytes.concat per pair would leave quadratic memory behind, which
    ///      inflates the gas the test contract measures around later calls).
    function pack(address[] memory teachers, address[] memory students) internal pure returns (bytes memory out) {
        out = new bytes(teachers.length * 40);
        for (uint256 i = 0; i < teachers.length; ++i) {
            bytes20 teacher = bytes20(teachers[i]);
            bytes20 student = bytes20(students[i]);
            for (uint256 b = 0; b < 20; ++b) {
                out[i * 40 + b] = teacher[b];
                out[i * 40 + 20 + b] = student[b];
            }
        }
    }
}

/// @notice Deployment, actors and round helpers shared by the test contracts.
abstract contract MarketFixture is TestBase {
    KnexaMarket internal market;
    address internal constant ADMIN = address(0xA11CE);
    address internal constant MATCHMAKER = address(0x3A7C);
    address internal constant ALICE = address(0x1001);
    address internal constant BOB = address(0x1002);
    address internal constant CAROL = address(0x1003);
    address internal constant DAVE = address(0x1004);
    address internal constant STRANGER = address(0x6666);
    bytes internal constant KEY = hex"02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899";
    bytes internal constant PROFILE = hex"01551220aa";
    bytes internal constant DECISION = hex"01551220dd";
    bytes internal constant BUNDLE = hex"01551220bb";
    bytes internal constant ADAPTER = hex"01551220cc";
    bytes internal constant EVIDENCE = hex"01551220ee";
    bytes internal constant VERDICT = hex"01551220ff";
    bytes32 internal constant POLICY = keccak256("linucb");

    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant FEE = 0.01 ether;
    uint256 internal constant BOND = 0.05 ether;
    uint256 internal constant MIN_ROUND = 2;
    uint256 internal constant REPORT_WINDOW = 3;
    uint256 internal constant VERDICT_WINDOW = 4;
    uint256 internal constant CREDIT_WINDOW = 10;

    /// @dev The current block height, tracked here because with via-IR the optimizer may reuse a
    ///      `block.number` read from before a `vm.roll` within one call frame.
    uint256 internal height;

    /// @dev The pairs of the last opened round (for proofs and settlement).
    address[] internal roundTeachers;
    address[] internal roundStudents;
    bytes32[] internal roundLeaves;
    uint256 internal roundId;

    function _parameters() internal pure returns (OrganizationRegistry.MarketParameters memory) {
        return OrganizationRegistry.MarketParameters({
            minStake: uint96(MIN_STAKE),
            exchangeFee: uint96(FEE),
            exitCooldownBlocks: 10,
            minRoundBlocks: uint32(MIN_ROUND),
            disputeBond: uint96(BOND),
            maxRoundBlocks: 1000,
            minReportWindowBlocks: uint32(REPORT_WINDOW),
            verdictWindowBlocks: uint32(VERDICT_WINDOW),
            creditWindowRounds: uint32(CREDIT_WINDOW),
            slashBps: 1000,
            reputationWeightBps: 2000,
            maxPairsPerRound: 64,
            teacherCapacity: 2
        });
    }

    function _deploy() internal {
        height = 100;
        vm.roll(height);
        market = new KnexaMarket(ADMIN, MATCHMAKER, _parameters());
    }

    function _advance(uint256 blocks) internal {
        height += blocks;
        vm.roll(height);
    }

    function _rollTo(uint256 target) internal {
        height = target;
        vm.roll(height);
    }

    function _register(address who, uint256 stake) internal {
        vm.deal(who, who.balance + stake);
        vm.prank(who);
        market.register{value: stake}("org", PROFILE, KEY);
    }

    function _one(address a) internal pure returns (address[] memory out) {
        out = new address[](1);
        out[0] = a;
    }

    function _two(address a, address b) internal pure returns (address[] memory out) {
        out = new address[](2);
        out[0] = a;
        out[1] = b;
    }

    /// @dev Open the next round with the given pairs; publish deadline at +MIN_ROUND, report at +REPORT_WINDOW.
    function _open(address[] memory teachers, address[] memory students) internal returns (uint256) {
        return _openAt(teachers, students, height + MIN_ROUND, height + MIN_ROUND + REPORT_WINDOW);
    }

    function _openAt(address[] memory teachers, address[] memory students, uint256 publishBy, uint256 reportBy)
        internal
        returns (uint256)
    {
        roundId = market.nextRoundId();
        delete roundTeachers;
        delete roundStudents;
        delete roundLeaves;
        for (uint256 i = 0; i < teachers.length; ++i) {
            roundTeachers.push(teachers[i]);
            roundStudents.push(students[i]);
        }
        bytes32[] memory leaves = PairTree.leaves(market, roundId, teachers, students);
        for (uint256 i = 0; i < leaves.length; ++i) {
            roundLeaves.push(leaves[i]);
        }
        vm.prank(MATCHMAKER);
        market.openRound(
            roundId, DECISION, POLICY, PairTree.pack(teachers, students), uint64(publishBy), uint64(reportBy)
        );
        return roundId;
    }

    function _proof(uint256 index) internal view returns (bytes32[] memory) {
        return PairTree.proof(roundLeaves, index);
    }

    function _packed() internal view returns (bytes memory) {
        return PairTree.pack(roundTeachers, roundStudents);
    }

    function _publish(uint256 index) internal {
        vm.prank(roundTeachers[index]);
        market.publishBundle(roundId, index, roundStudents[index], BUNDLE, _proof(index));
    }

    function _report(uint256 index, int256 gain) internal {
        vm.prank(roundStudents[index]);
        market.reportGain(roundId, index, roundTeachers[index], gain, ADAPTER, _proof(index));
    }

    function _dispute(uint256 index) internal {
        vm.prank(roundStudents[index]);
        market.disputeBundle(roundId, index, roundTeachers[index], EVIDENCE, _proof(index));
    }

    function _rule(uint256 index, bool defective) internal {
        vm.prank(MATCHMAKER);
        market.resolveDispute(
            roundId, index, roundTeachers[index], roundStudents[index], defective, VERDICT, _proof(index)
        );
    }

    function _settle() internal {
        market.settleRound(roundId, _packed());
    }

    function _afterReports() internal {
        _rollTo(market.getRound(roundId).reportDeadline + 1);
    }

    function _afterVerdicts() internal {
        _rollTo(market.getRound(roundId).verdictDeadline + 1);
    }

    function _stake(address who) internal view returns (uint256) {
        return market.organization(who).stake;
    }

    function _reputation(address who) internal view returns (uint256) {
        return market.organization(who).reputation;
    }

    function _credits(address who) internal view returns (uint256) {
        return market.organization(who).credits;
    }

    /// @dev Wei accounted by the contract: stakes + withdrawable + escrowed fees + held bonds.
    function _accounted(address[] memory everyone) internal view returns (uint256 total) {
        for (uint256 i = 0; i < everyone.length; ++i) {
            total += _stake(everyone[i]) + market.pendingWithdrawal(everyone[i]);
        }
        total += market.escrowedFees() + market.heldBonds();
    }
}
