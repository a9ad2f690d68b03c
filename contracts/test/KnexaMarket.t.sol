// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {KnexaMarket} from "../src/KnexaMarket.sol";
import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {MarketFixture, PairTree} from "./MarketFixture.sol";

/// @dev An organization that cannot receive ether, to reach the TransferFailed path.
contract EtherRefuser {
    function register(KnexaMarket market, bytes calldata key) external payable {
        market.register{value: msg.value}("refuser", hex"0155", key);
    }

    function requestLeave(KnexaMarket market) external {
        market.requestExit();
    }

    function finish(KnexaMarket market) external {
        market.completeExit();
        market.withdraw();
    }
}

contract KnexaMarketTest is MarketFixture {
    uint256 internal constant WAD = 1e18;

    function setUp() public {
        _deploy();
        _register(ALICE, 2 ether);
        _register(BOB, 2 ether);
        _register(CAROL, 2 ether);
        _register(DAVE, 2 ether);
    }

    function _everyone() internal pure returns (address[] memory out) {
        out = new address[](4);
        out[0] = ALICE;
        out[1] = BOB;
        out[2] = CAROL;
        out[3] = DAVE;
    }

    function _ring() internal returns (uint256) {
        return _open(_two(ALICE, BOB), _two(BOB, ALICE));
    }

    // ------------------------------------------------------------------ the happy path

    function test_RegisterStartsWithoutTrust() public view {
        OrganizationRegistry.Organization memory org = market.organization(ALICE);
        assertEq(uint256(org.status), uint256(OrganizationRegistry.OrganizationStatus.Active), "status");
        assertEq(org.stake, 2 ether, "stake");
        assertEq(org.reputation, 0, "a new organization has no reputation");
        assertEq(market.organizationCount(), 4, "count");
    }

    function test_ReportSettlesThePairAtOnce() public {
        _ring();
        _publish(0);
        _publish(1);
        assertEq(_stake(BOB), 2 ether - FEE, "fee escrowed at delivery");
        assertEq(market.escrowedFees(), 2 * FEE, "escrow");
        _report(0, 0.25e18);
        _report(1, -0.5e18);
        assertEq(market.escrowedFees(), 0, "escrow released on report");
        assertEq(market.pendingWithdrawal(ALICE), FEE, "fee to the teacher");
        assertEq(_credits(ALICE), 0.25e18, "credits for a positive gain");
        assertEq(_credits(BOB), 0, "no credits for a negative gain");
        assertEq(_reputation(ALICE), 0.36e18, "reputation follows delivery and reporting (two moves)");
        assertEq(uint256(market.pairState(roundId, 0)), uint256(KnexaMarket.PairState.Settled), "settled");
        _afterReports();
        _settle();
        assertEq(market.openRoundId(), 0, "closed");
        assertEq(_accounted(_everyone()), address(market).balance, "no wei created or lost");
    }

    function test_ProofsWorkForEverySize() public {
        address[] memory orgs = new address[](9);
        for (uint256 i = 0; i < 9; ++i) {
            orgs[i] = address(uint160(0x2000 + i));
            _register(orgs[i], 2 ether);
        }
        vm.prank(ADMIN);
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.teacherCapacity = 9;
        market.setParameters(p);
        for (uint256 n = 1; n <= 9; ++n) {
            address[] memory teachers = new address[](n);
            address[] memory students = new address[](n);
            for (uint256 i = 0; i < n; ++i) {
                teachers[i] = orgs[(i + 1) % 9];
                students[i] = orgs[i];
            }
            _open(teachers, students);
            for (uint256 i = 0; i < n; ++i) {
                _publish(i);
            }
            for (uint256 i = 0; i < n; ++i) {
                _report(i, 0);
            }
            _afterReports();
            _settle();
        }
    }

    // ------------------------------------------------------------------ attack 1: last-block publish

    function test_LastBlockPublishStillLeavesTheReportWindow() public {
        _open(_one(ALICE), _one(BOB));
        KnexaMarket.Round memory round = market.getRound(roundId);
        assertLe(round.publishDeadline + REPORT_WINDOW, round.reportDeadline, "report window");
        _rollTo(round.publishDeadline);
        _publish(0);
        _rollTo(round.reportDeadline);
        _report(0, 0.1e18);
        _afterReports();
        _settle();
        assertEq(_stake(BOB), 2 ether - FEE, "the student that reported in its window is not slashed");
    }

    function test_RevertWhen_PublishAfterPublishDeadline() public {
        _ring();
        uint256 deadline = market.getRound(roundId).publishDeadline;
        _rollTo(deadline + 1);
        bytes32[] memory proof = _proof(0);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlinePassed.selector, roundId, deadline));
        market.publishBundle(roundId, 0, BOB, BUNDLE, proof);
    }

    function test_RevertWhen_ReportWindowTooShort() public {
        bytes memory pairs = PairTree.pack(_one(ALICE), _one(BOB));
        uint256 publishBy = height + MIN_ROUND;
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(
                KnexaMarket.DeadlineOutOfRange.selector,
                publishBy + REPORT_WINDOW - 1,
                publishBy + REPORT_WINDOW,
                publishBy + 1000
            )
        );
        market.openRound(1, DECISION, POLICY, pairs, uint64(publishBy), uint64(publishBy + REPORT_WINDOW - 1));
    }

    function test_RevertWhen_RoundShorterThanMinimum() public {
        bytes memory pairs = PairTree.pack(_one(ALICE), _one(BOB));
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(
                KnexaMarket.DeadlineOutOfRange.selector, height + 1, height + MIN_ROUND, height + 1000
            )
        );
        market.openRound(1, DECISION, POLICY, pairs, uint64(height + 1), uint64(height + 1 + REPORT_WINDOW));
    }

    function test_RevertWhen_ReportAfterReportDeadline() public {
        _ring();
        _publish(0);
        uint256 deadline = market.getRound(roundId).reportDeadline;
        _rollTo(deadline + 1);
        bytes32[] memory proof = _proof(0);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlinePassed.selector, roundId, deadline));
        market.reportGain(roundId, 0, ALICE, 0, ADAPTER, proof);
    }

    // ------------------------------------------------------------------ attack 2: collusion farming

    /// @dev Bound: credits of one directed pair inside one credit window are < 2 WAD, whatever is
    ///      reported, so over R rounds a colluder earns < 2 WAD * ceil(R / CREDIT_WINDOW) from its
    ///      partner; an honest pair with true gain g on the same schedule earns g times the same
    ///      geometric sum. Reputation follows delivery only, so colluders gain none over honest pairs.
    function test_CollusionGainIsBoundedPerDirectedPair() public {
        uint256 rounds = 20;
        int256 honestGain = 0.1e18;
        for (uint256 r = 0; r < rounds; ++r) {
            address[] memory teachers = new address[](4);
            address[] memory students = new address[](4);
            (teachers[0], students[0]) = (ALICE, BOB); // colluders
            (teachers[1], students[1]) = (BOB, ALICE);
            (teachers[2], students[2]) = (CAROL, DAVE); // honest, true gain 0.1
            (teachers[3], students[3]) = (DAVE, CAROL);
            _open(teachers, students);
            for (uint256 i = 0; i < 4; ++i) {
                _publish(i);
            }
            _report(0, 1e18);
            _report(1, 1e18);
            _report(2, honestGain);
            _report(3, honestGain);
            _afterReports();
            _settle();
        }
        uint256 windows = (rounds + CREDIT_WINDOW - 1) / CREDIT_WINDOW;
        uint256 bound = 2 * WAD * windows;
        assertLe(_credits(ALICE), bound, "colluder credits bounded");
        assertTrue(_credits(ALICE) > 0, "colluder earned something");
        // The same decay applied to the honest pair: the excess is (1 - g) of the geometric sum.
        uint256 excess = _credits(ALICE) - _credits(CAROL);
        assertLe(excess, (bound * 9) / 10, "excess over an honest pair bounded by (1 - g) * 2 WAD per window");
        assertEq(_reputation(ALICE), _reputation(CAROL), "no reputation from collusion");
        assertEq(_stake(ALICE), _stake(CAROL), "no stake from collusion");
    }

    function test_CreditsDecayWithRepeatsInsideTheWindow() public {
        uint256[4] memory expected = [uint256(1e18), 0.5e18, 0.25e18, 0.125e18];
        for (uint256 r = 0; r < 4; ++r) {
            uint256 before = _credits(ALICE);
            _open(_one(ALICE), _one(BOB));
            _publish(0);
            _report(0, 1e18);
            assertEq(_credits(ALICE) - before, expected[r], "halved per repeat");
            _afterReports();
            _settle();
        }
        (, uint256 repeats) = market.pairHistory(ALICE, BOB);
        assertEq(repeats, 4, "repeats counted");
    }

    // ------------------------------------------------------------------ attack 3: griefing and garbage

    function test_NegativeReportNeverLowersTheTeacher() public {
        // earn some reputation first
        _open(_one(ALICE), _one(BOB));
        _publish(0);
        _report(0, 0.5e18);
        _afterReports();
        _settle();
        uint256 reputation = _reputation(ALICE);
        uint256 stake = _stake(ALICE);
        _open(_one(ALICE), _one(BOB));
        _publish(0);
        _report(0, -1e18);
        _afterReports();
        _settle();
        assertTrue(_reputation(ALICE) >= reputation, "a bare negative report does not lower reputation");
        assertEq(_stake(ALICE), stake, "nor the stake");
        assertEq(market.pendingWithdrawal(ALICE), 2 * FEE, "and the fee is paid");
    }

    function test_DefectiveBundleRefundsTheStudentAndSlashesTheTeacher() public {
        _ring();
        _publish(0);
        _dispute(0);
        assertEq(_stake(BOB), 2 ether - FEE - BOND, "fee escrowed, bond held");
        assertEq(market.heldBonds(), BOND, "bond");
        uint256 teacherStake = _stake(ALICE);
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        _rule(0, true);
        assertEq(_stake(BOB), 2 ether, "fee and bond back");
        assertEq(_stake(ALICE), teacherStake - teacherStake / 10, "teacher slashed");
        assertEq(market.pendingWithdrawal(BOB), teacherStake / 10, "to the student");
        assertEq(_reputation(ALICE), 0, "no reputation for a defective bundle");
        _afterReports();
        _settle();
        assertEq(_accounted(_everyone()), address(market).balance, "no wei created or lost");
    }

    function test_FalseDisputeCostsTheDisputer() public {
        _ring();
        _publish(0);
        _dispute(0);
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        _rule(0, false);
        assertEq(_stake(BOB), 2 ether - FEE - BOND, "the disputer lost its bond");
        assertEq(market.pendingWithdrawal(ALICE), FEE + BOND, "fee and bond to the teacher");
        assertEq(_stake(ALICE), 2 ether, "the teacher is not slashed");
        assertEq(_reputation(BOB), 0, "the disputer earned no reputation");
        assertEq(_reputation(ALICE), 0.2e18, "the teacher delivered");
    }

    function test_UnresolvedDisputeRefundsWithoutSlash() public {
        _open(_one(ALICE), _one(BOB));
        _publish(0);
        _dispute(0);
        _afterReports();
        vm.expectRevert(
            abi.encodeWithSelector(
                KnexaMarket.DeadlineNotReached.selector, roundId, market.getRound(roundId).verdictDeadline
            )
        );
        market.settleRound(roundId, _packed());
        _afterVerdicts();
        _settle();
        assertEq(_stake(BOB), 2 ether, "fee and bond back to the disputer");
        assertEq(_stake(ALICE), 2 ether, "no slash without a verdict");
        assertEq(_accounted(_everyone()), address(market).balance, "no wei created or lost");
    }

    function test_RevertWhen_VerdictBeforePublishDeadline() public {
        _ring();
        _publish(0);
        _dispute(0);
        bytes32[] memory proof = _proof(0);
        uint256 deadline = market.getRound(roundId).publishDeadline;
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.VerdictTooEarly.selector, roundId, deadline));
        market.resolveDispute(roundId, 0, ALICE, BOB, true, VERDICT, proof);
    }

    function test_RevertWhen_VerdictByNonArbiter() public {
        _ring();
        _publish(0);
        _dispute(0);
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        bytes32[] memory proof = _proof(0);
        bytes32 role = market.ARBITER_ROLE();
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, BOB, role));
        market.resolveDispute(roundId, 0, ALICE, BOB, true, VERDICT, proof);
    }

    function test_RevertWhen_VerdictWithoutDispute() public {
        _ring();
        _publish(0);
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        bytes32[] memory proof = _proof(0);
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Published)
        );
        market.resolveDispute(roundId, 0, ALICE, BOB, true, VERDICT, proof);
    }

    function test_RevertWhen_DisputeWithoutBundle() public {
        _ring();
        bytes32[] memory proof = _proof(0);
        vm.prank(BOB);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Assigned)
        );
        market.disputeBundle(roundId, 0, ALICE, EVIDENCE, proof);
    }

    function test_RevertWhen_DisputeByAnotherThanTheStudent() public {
        _ring();
        _publish(0);
        bytes32[] memory proof = _proof(0);
        vm.prank(CAROL);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 0, ALICE, CAROL));
        market.disputeBundle(roundId, 0, ALICE, EVIDENCE, proof);
    }

    function test_RevertWhen_ReportAfterDispute() public {
        _ring();
        _publish(0);
        _dispute(0);
        bytes32[] memory proof = _proof(0);
        vm.prank(BOB);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Disputed)
        );
        market.reportGain(roundId, 0, ALICE, 1e18, ADAPTER, proof);
    }

    // ------------------------------------------------------------------ attack 4: the matchmaker bounded

    function test_RevertWhen_TeacherOverCapacity() public {
        address[] memory teachers = new address[](3);
        address[] memory students = new address[](3);
        (teachers[0], students[0]) = (ALICE, BOB);
        (teachers[1], students[1]) = (ALICE, CAROL);
        (teachers[2], students[2]) = (ALICE, DAVE);
        bytes memory pairs = PairTree.pack(teachers, students);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.TeacherOverCapacity.selector, ALICE, 2));
        market.openRound(1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
    }

    /// @dev With capacity c, a victim teacher that cannot deliver loses at most 1 - (1 - slash)^c of its
    ///      stake per round (here 19%), instead of compounding over 128 pairs.
    function test_SlashesPerRoundBoundedByCapacity() public {
        _open(_two(ALICE, ALICE), _two(BOB, CAROL));
        _afterReports();
        _settle();
        assertEq(_stake(ALICE), (2 ether * 81) / 100, "two slashes of 10% at most");
    }

    function test_RevertWhen_DuplicateStudent() public {
        bytes memory pairs = PairTree.pack(_two(ALICE, CAROL), _two(BOB, BOB));
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DuplicateStudent.selector, BOB));
        market.openRound(1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
    }

    function test_RevertWhen_PairNotInTheCommittedRoot() public {
        _ring();
        bytes32[] memory proof = _proof(0);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 0, ALICE, CAROL));
        market.publishBundle(roundId, 0, CAROL, BUNDLE, proof);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 1, ALICE, BOB));
        market.publishBundle(roundId, 1, BOB, BUNDLE, proof);
        bytes32[] memory empty = new bytes32[](0);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 7, ALICE, BOB));
        market.publishBundle(roundId, 7, BOB, BUNDLE, empty);
    }

    function test_RevertWhen_SettleWithOtherPairs() public {
        _ring();
        _afterReports();
        bytes memory other = PairTree.pack(_two(ALICE, CAROL), _two(CAROL, ALICE));
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairsMismatch.selector, roundId));
        market.settleRound(roundId, other);
        bytes memory short = PairTree.pack(_one(ALICE), _one(BOB));
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairsMismatch.selector, roundId));
        market.settleRound(roundId, short);
    }

    // ------------------------------------------------------------------ lean settlement

    function test_SettleNeedsNoListOnceEveryPairIsSettled() public {
        _ring();
        _publish(0);
        _publish(1);
        assertEq(market.unsettledPairs(roundId), 2, "two pairs pending");
        _report(0, 0.1e18);
        assertEq(market.unsettledPairs(roundId), 1, "one pair pending");
        _report(1, 0.1e18);
        assertEq(market.unsettledPairs(roundId), 0, "every pair settled by its report");
        _afterReports();
        uint256 accounted = _accounted(_everyone());
        uint256 aliceStake = _stake(ALICE);
        vm.expectEmit(true, true, false, true);
        emit KnexaMarket.RoundFinalized(roundId, STRANGER, 0);
        vm.prank(STRANGER);
        market.settleRound(roundId, "");
        assertEq(market.openRoundId(), 0, "closed without a list");
        assertEq(_accounted(_everyone()), accounted, "nothing moved");
        assertEq(_stake(ALICE), aliceStake, "no slash");
        assertEq(market.escrowedFees(), 0, "no escrow left");
        assertEq(market.unsettledPairs(roundId), 0, "finalized");
    }

    /// @dev Attack: finalize a round without its pair list (or with a wrong one) to skip a no-show's
    ///      settlement. The contract needs the list exactly while a pair is left.
    function test_RevertWhen_SettleWithoutListWhilePairsRemain() public {
        _ring();
        _publish(0);
        _publish(1);
        _report(0, 0.1e18);
        _afterReports();
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairsMismatch.selector, roundId));
        market.settleRound(roundId, "");
        bytes memory other = PairTree.pack(_two(ALICE, CAROL), _two(CAROL, ALICE));
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairsMismatch.selector, roundId));
        market.settleRound(roundId, other);
        uint256 aliceStake = _stake(ALICE);
        _settle();
        assertEq(_stake(ALICE), aliceStake - aliceStake / 10, "the silent student was settled (NoReport)");
    }

    /// @dev The all-settled check reads the 2-bit states word by word (128 pairs a word): a pending
    ///      pair is found at either end of a full word and in a partial last word.
    function test_AllSettledCheckAtWordBoundaries() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.maxPairsPerRound = 256;
        vm.prank(ADMIN);
        market.setParameters(p);
        address[] memory members = new address[](131);
        for (uint256 i = 0; i < members.length; ++i) {
            members[i] = address(uint160(0x20000 + i));
            _register(members[i], 2 ether);
        }
        uint256[3] memory counts = [uint256(127), 128, 130];
        for (uint256 c = 0; c < counts.length; ++c) {
            uint256 count = counts[c];
            address[] memory teachers = new address[](count);
            address[] memory students = new address[](count);
            for (uint256 i = 0; i < count; ++i) {
                teachers[i] = members[i];
                students[i] = members[i + 1];
            }
            _open(teachers, students);
            uint256[3] memory pending = [uint256(0), 127, count - 1];
            for (uint256 i = 0; i < count; ++i) {
                _publish(i);
            }
            for (uint256 i = 0; i < count; ++i) {
                if (i != pending[c]) _report(i, 0.1e18);
            }
            assertEq(market.unsettledPairs(roundId), 1, "one pair left");
            _afterReports();
            vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairsMismatch.selector, roundId));
            market.settleRound(roundId, "");
            _settle();
            assertEq(market.openRoundId(), 0, "closed");
            assertEq(market.escrowedFees(), 0, "the left pair's fee was released");
        }
    }

    function test_SlashProceedsAndFeesAreWithdrawable() public {
        // A beneficiary never owed anything before: its withdrawable balance lives in its second
        // word, written at registration; a NoBundle slash and a fee land there and leave by withdraw.
        assertEq(market.organization(CAROL).registeredAtBlock, 100, "registration block recorded");
        _open(_two(ALICE, CAROL), _two(CAROL, DAVE));
        _publish(1);
        _report(1, 0.5e18);
        _afterReports();
        _settle();
        uint256 slash = 2 ether / 10;
        assertEq(market.pendingWithdrawal(CAROL), slash + FEE, "slash from ALICE + fee from DAVE");
        assertEq(_credits(CAROL), 0.5e18, "credits next to the fee");
        uint256 before = CAROL.balance;
        vm.prank(CAROL);
        market.withdraw();
        assertEq(CAROL.balance - before, slash + FEE, "paid out");
        assertEq(market.pendingWithdrawal(CAROL), 0, "nothing left");
        assertEq(_credits(CAROL), 0.5e18, "credits stay");
        assertEq(market.organization(CAROL).registeredAtBlock, 100, "registration block stays");
    }

    function test_ExitRequestedMidRoundAlwaysCompletes() public {
        _ring();
        vm.prank(ALICE);
        market.requestExit();
        _publish(0);
        _publish(1);
        _report(0, 0);
        _report(1, 0);
        _afterReports();
        _settle();
        // the matchmaker reopens in the very block the last round closed: ALICE cannot be in it ...
        bytes memory pairs = PairTree.pack(_one(ALICE), _one(CAROL));
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.OrganizationNotActive.selector, ALICE));
        market.openRound(roundId + 1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
        _open(_one(BOB), _one(CAROL));
        // ... and its exit completes during the new round
        _rollTo(market.organization(ALICE).exitAvailableAtBlock);
        vm.prank(ALICE);
        market.completeExit();
        assertEq(market.pendingWithdrawal(ALICE), 2 ether - FEE + FEE, "stake minus its fee plus the fee earned");
    }

    function test_RevertWhen_CompleteExitWhileItsRoundIsOpen() public {
        _ring();
        vm.prank(ALICE);
        market.requestExit();
        _rollTo(market.organization(ALICE).exitAvailableAtBlock);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.InOpenRound.selector, ALICE, roundId));
        market.completeExit();
    }

    // ------------------------------------------------------------------ attack 5: whitewashing

    function test_NewOrganizationBuysNoTrust() public {
        for (uint256 r = 0; r < 3; ++r) {
            _ring();
            _publish(0);
            _publish(1);
            _report(0, 0);
            _report(1, 0);
            _afterReports();
            _settle();
        }
        _register(STRANGER, 50 ether);
        assertEq(_reputation(STRANGER), 0, "a big stake buys no reputation");
        assertTrue(_reputation(ALICE) > _reputation(STRANGER), "a veteran stays ahead");
    }

    // ------------------------------------------------------------------ no-shows

    function test_NoShowsAreSlashedOnlyWithTheFullWindow() public {
        _ring();
        _publish(1); // BOB delivers to ALICE; ALICE delivers nothing to BOB; ALICE does not report
        _afterReports();
        _settle();
        uint256 afterFee = 2 ether - FEE; // ALICE's fee was escrowed when BOB delivered
        uint256 afterFirst = afterFee - afterFee / 10; // no bundle to BOB
        assertEq(_stake(ALICE), afterFirst - afterFirst / 10, "double no-show slashed twice");
        assertEq(market.pendingWithdrawal(BOB), afterFee / 10 + FEE + afterFirst / 10, "BOB paid");
        assertEq(_reputation(BOB), 0.2e18, "BOB delivered");
        assertEq(_accounted(_everyone()), address(market).balance, "no wei created or lost");
    }

    // ------------------------------------------------------------------ access rules

    function test_RevertWhen_UpdateProfileWhileExiting() public {
        vm.prank(ALICE);
        market.requestExit();
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.OrganizationNotActive.selector, ALICE));
        market.updateProfile(PROFILE);
    }

    function test_RevertWhen_AddStakeByUnknown() public {
        vm.deal(STRANGER, 1 ether);
        vm.prank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.UnknownOrganization.selector, STRANGER));
        market.addStake{value: 1 ether}();
    }

    function test_RevertWhen_AddStakeWhileExiting() public {
        vm.prank(ALICE);
        market.requestExit();
        vm.deal(ALICE, 1 ether);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.OrganizationNotActive.selector, ALICE));
        market.addStake{value: 1 ether}();
    }

    function test_RevertWhen_AddStakeZero() public {
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.ZeroAmount.selector);
        market.addStake();
    }

    function test_RevertWhen_RequestExitByUnknown() public {
        vm.prank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.UnknownOrganization.selector, STRANGER));
        market.requestExit();
    }

    function test_RevertWhen_CompleteExitWithoutRequest() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.ExitNotRequested.selector, ALICE));
        market.completeExit();
    }

    function test_RevertWhen_CompleteExitBeforeCooldown() public {
        vm.prank(ALICE);
        market.requestExit();
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.CooldownNotOver.selector, height + 10));
        market.completeExit();
    }

    function test_RevertWhen_RegisterTwiceOrBadly() public {
        vm.deal(ALICE, 10 ether);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.AlreadyRegistered.selector, ALICE));
        market.register{value: 1 ether}("org", PROFILE, KEY);
        vm.deal(STRANGER, 10 ether);
        vm.startPrank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.StakeTooLow.selector, 0.5 ether, MIN_STAKE));
        market.register{value: 0.5 ether}("org", PROFILE, KEY);
        vm.expectRevert(OrganizationRegistry.InvalidName.selector);
        market.register{value: 1 ether}("", PROFILE, KEY);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.register{value: 1 ether}("org", "", KEY);
        vm.expectRevert(OrganizationRegistry.InvalidPublicKey.selector);
        market.register{value: 1 ether}("org", PROFILE, hex"04aa");
        vm.stopPrank();
    }

    function test_RevertWhen_WithdrawNothingOrRefused() public {
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.NothingToWithdraw.selector);
        market.withdraw();
        EtherRefuser refuser = new EtherRefuser();
        vm.deal(address(this), 1 ether);
        refuser.register{value: 1 ether}(market, KEY);
        refuser.requestLeave(market);
        _advance(10);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.TransferFailed.selector, address(refuser)));
        refuser.finish(market);
    }

    function test_RevertWhen_EachInvalidParameter() public {
        string[10] memory fields = [
            "slashBps",
            "reputationWeightBps",
            "reputationWeightBps",
            "maxPairsPerRound",
            "teacherCapacity",
            "minRoundBlocks",
            "maxRoundBlocks",
            "minReportWindowBlocks",
            "verdictWindowBlocks",
            "creditWindowRounds"
        ];
        for (uint256 k = 0; k < 11; ++k) {
            OrganizationRegistry.MarketParameters memory p = _parameters();
            string memory field;
            if (k == 0) p.slashBps = 10_001;
            if (k == 1) p.reputationWeightBps = 0;
            if (k == 2) p.reputationWeightBps = 10_001;
            if (k == 3) p.maxPairsPerRound = market.MAX_PAIRS_LIMIT() + 1;
            if (k == 4) p.teacherCapacity = 0;
            if (k == 5) p.minRoundBlocks = 0;
            if (k == 6) p.maxRoundBlocks = 1;
            if (k == 7) p.minReportWindowBlocks = 0;
            if (k == 8) p.verdictWindowBlocks = 0;
            if (k == 9) p.creditWindowRounds = 0;
            if (k == 10) p.disputeBond = uint96(MIN_STAKE);
            field = k < 10 ? fields[k] : "minStake";
            vm.prank(ADMIN);
            vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.InvalidParameters.selector, field));
            market.setParameters(p);
        }
        OrganizationRegistry.MarketParameters memory zeroPairs = _parameters();
        zeroPairs.maxPairsPerRound = 0;
        vm.prank(ADMIN);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.InvalidParameters.selector, "maxPairsPerRound"));
        market.setParameters(zeroPairs);
    }

    function test_RevertWhen_SetParametersByNonAdminOrDuringRound() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        bytes32 role = market.DEFAULT_ADMIN_ROLE();
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, MATCHMAKER, role)
        );
        market.setParameters(p);
        _ring();
        vm.prank(ADMIN);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundStillOpen.selector, roundId));
        market.setParameters(p);
    }

    function test_RevertWhen_PublishOversizedCid() public {
        _ring();
        bytes memory cid = new bytes(129);
        cid[0] = 0x01;
        bytes32[] memory proof = _proof(0);
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.publishBundle(roundId, 0, BOB, cid, proof);
    }

    function test_RevertWhen_ReportUnopenedRound() public {
        bytes32[] memory proof = new bytes32[](0);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundNotOpen.selector, 5));
        market.reportGain(5, 0, ALICE, 0, ADAPTER, proof);
    }

    function test_RevertWhen_SettleNeverOpenedRound() public {
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundNotOpen.selector, 9));
        market.settleRound(9, "");
    }

    function test_RevertWhen_SettleTwiceOrEarly() public {
        _ring();
        uint256 deadline = market.getRound(roundId).reportDeadline;
        bytes memory pairs = _packed();
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlineNotReached.selector, roundId, deadline));
        market.settleRound(roundId, pairs);
        _afterReports();
        _settle();
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundNotOpen.selector, roundId));
        market.settleRound(roundId, pairs);
    }

    function test_RevertWhen_OpenRoundBadly() public {
        bytes memory pairs = PairTree.pack(_one(ALICE), _one(BOB));
        uint64 publishBy = uint64(height + 2);
        uint64 reportBy = uint64(height + 5);
        bytes32 role = market.MATCHMAKER_ROLE();
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, ALICE, role));
        market.openRound(1, DECISION, POLICY, pairs, publishBy, reportBy);
        vm.startPrank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.UnexpectedRoundId.selector, 1, 2));
        market.openRound(2, DECISION, POLICY, pairs, publishBy, reportBy);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.InvalidPairList.selector, 0));
        market.openRound(1, DECISION, POLICY, "", publishBy, reportBy);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.InvalidPairList.selector, 41));
        market.openRound(1, DECISION, POLICY, bytes.concat(pairs, hex"00"), publishBy, reportBy);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.SelfPair.selector, ALICE));
        market.openRound(1, DECISION, POLICY, PairTree.pack(_one(ALICE), _one(ALICE)), publishBy, reportBy);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.UnknownOrganization.selector, STRANGER));
        market.openRound(1, DECISION, POLICY, PairTree.pack(_one(ALICE), _one(STRANGER)), publishBy, reportBy);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.openRound(1, "", POLICY, pairs, publishBy, reportBy);
        vm.stopPrank();
        _ring();
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundStillOpen.selector, roundId));
        market.openRound(roundId + 1, DECISION, POLICY, pairs, publishBy, reportBy);
    }

    function test_RevertWhen_TooManyPairs() public {
        address[] memory teachers = new address[](65);
        address[] memory students = new address[](65);
        bytes memory pairs = PairTree.pack(teachers, students);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.TooManyPairs.selector, 65, 64));
        market.openRound(1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
    }

    function test_RevertWhen_MemberStakeBelowMinimum() public {
        _register(STRANGER, 1 ether);
        _open(_one(STRANGER), _one(ALICE)); // STRANGER delivers nothing and is slashed below minStake
        _afterReports();
        _settle();
        bytes memory pairs = PairTree.pack(_one(STRANGER), _one(BOB));
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.StakeBelowMinimum.selector, STRANGER, 0.9 ether, MIN_STAKE)
        );
        market.openRound(roundId + 1, DECISION, POLICY, pairs, uint64(height + 2), uint64(height + 5));
    }

    function test_RevertWhen_ReportTwiceBeforePublishOrOutOfRange() public {
        _ring();
        bytes32[] memory proof = _proof(0);
        vm.startPrank(BOB);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Assigned)
        );
        market.reportGain(roundId, 0, ALICE, 0, ADAPTER, proof);
        vm.stopPrank();
        _publish(0);
        vm.startPrank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.GainOutOfRange.selector, int256(1e18 + 1)));
        market.reportGain(roundId, 0, ALICE, 1e18 + 1, ADAPTER, proof);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 0, CAROL, BOB));
        market.reportGain(roundId, 0, CAROL, 0, ADAPTER, proof);
        market.reportGain(roundId, 0, ALICE, 0, ADAPTER, proof);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Settled)
        );
        market.reportGain(roundId, 0, ALICE, 0, ADAPTER, proof);
        vm.stopPrank();
    }

    function test_RevertWhen_PublishTwiceOrByAnother() public {
        _ring();
        bytes32[] memory proof = _proof(0);
        vm.prank(CAROL);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotInRound.selector, roundId, 0, CAROL, BOB));
        market.publishBundle(roundId, 0, BOB, BUNDLE, proof);
        _publish(0);
        vm.prank(ALICE);
        vm.expectRevert(
            abi.encodeWithSelector(KnexaMarket.WrongPairState.selector, roundId, 0, KnexaMarket.PairState.Published)
        );
        market.publishBundle(roundId, 0, BOB, BUNDLE, proof);
    }

    function test_RevertWhen_DisputeBondNotCovered() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.slashBps = 10_000;
        vm.prank(ADMIN);
        market.setParameters(p);
        // BOB teaches CAROL and delivers garbage (slashed 100% by verdict); ALICE delivers to BOB late
        _open(_two(BOB, ALICE), _two(CAROL, BOB));
        _publish(0);
        _publish(1);
        _dispute(0);
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        _rule(0, true);
        bytes32[] memory proof = _proof(1);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.BondNotCovered.selector, BOB, 0, BOND));
        market.disputeBundle(roundId, 1, ALICE, EVIDENCE, proof);
    }

    // ------------------------------------------------------------------ fuzz

    function testFuzz_AnyScheduleConservesWei(uint256 seed) public {
        _ring();
        for (uint256 i = 0; i < 2; ++i) {
            uint256 choice = (seed >> (i * 8)) % 5; // 0 nothing, 1 publish, 2 report, 3 dispute, 4 dispute+rule
            if (choice >= 1) _publish(i);
            if (choice == 2) _report(i, int256((seed >> 32) % 2e18) - 1e18);
            if (choice >= 3) _dispute(i);
        }
        _rollTo(market.getRound(roundId).publishDeadline + 1);
        for (uint256 i = 0; i < 2; ++i) {
            if ((seed >> (i * 8)) % 5 == 4) _rule(i, (seed >> 40) % 2 == 0);
        }
        _afterVerdicts();
        _settle();
        assertEq(market.escrowedFees(), 0, "escrow empty");
        assertEq(market.heldBonds(), 0, "bonds empty");
        assertEq(_accounted(_everyone()), address(market).balance, "no wei created or lost");
        for (uint256 i = 0; i < 4; ++i) {
            assertLe(_reputation(_everyone()[i]), WAD, "reputation <= 1");
        }
    }
}
