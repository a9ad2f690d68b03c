// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {KnexaMarket} from "../src/KnexaMarket.sol";
import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {TestBase} from "./Vm.sol";

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

contract KnexaMarketTest is TestBase {
    KnexaMarket internal market;
    address internal constant ADMIN = address(0xA11CE);
    address internal constant MATCHMAKER = address(0x3A7C);
    address internal constant ALICE = address(0x1001);
    address internal constant BOB = address(0x1002);
    address internal constant CAROL = address(0x1003);
    address internal constant STRANGER = address(0x6666);
    bytes internal constant KEY = hex"02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899";
    bytes internal constant PROFILE = hex"01551220aa";
    bytes internal constant DECISION = hex"01551220dd";
    bytes internal constant BUNDLE = hex"01551220bb";
    bytes internal constant ADAPTER = hex"01551220cc";
    bytes32 internal constant POLICY = keccak256("linucb");

    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant FEE = 0.01 ether;

    function _parameters() internal pure returns (OrganizationRegistry.MarketParameters memory) {
        return OrganizationRegistry.MarketParameters({
            minStake: MIN_STAKE,
            exchangeFee: FEE,
            exitCooldownBlocks: 10,
            minRoundBlocks: 2,
            maxRoundBlocks: 1000,
            slashBps: 1000,
            reputationWeightBps: 2000,
            maxPairsPerRound: 8
        });
    }

    /// @dev The current block height, tracked here because with via-IR the optimizer may reuse a
    ///      `block.number` read from before a `vm.roll` within one call frame.
    uint256 internal height;

    function _advance(uint256 blocks) internal {
        height += blocks;
        vm.roll(height);
    }

    function setUp() public {
        height = 100;
        vm.roll(height);
        market = new KnexaMarket(ADMIN, MATCHMAKER, _parameters());
        _register(ALICE, 2 ether);
        _register(BOB, 2 ether);
        _register(CAROL, 2 ether);
    }

    function _register(address org, uint256 stake) internal {
        vm.deal(org, org.balance + stake);
        vm.prank(org);
        market.register{value: stake}("org", PROFILE, KEY);
    }

    function _pairs(address t0, address s0) internal pure returns (address[] memory t, address[] memory s) {
        t = new address[](1);
        s = new address[](1);
        t[0] = t0;
        s[0] = s0;
    }

    /// @dev Ring ALICE -> BOB -> CAROL -> ALICE, opened as round `nextRoundId` with deadline +5.
    function _openRing() internal returns (uint256 roundId) {
        address[] memory t = new address[](3);
        address[] memory s = new address[](3);
        (t[0], s[0]) = (ALICE, BOB);
        (t[1], s[1]) = (BOB, CAROL);
        (t[2], s[2]) = (CAROL, ALICE);
        roundId = market.nextRoundId();
        vm.prank(MATCHMAKER);
        market.openRound(roundId, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function _accounted(address[] memory accounts) internal view returns (uint256 total) {
        for (uint256 i = 0; i < accounts.length; ++i) {
            total += market.organization(accounts[i]).stake + market.pendingWithdrawal(accounts[i]);
        }
        total += market.escrowedFees();
    }

    function _everyone() internal pure returns (address[] memory accounts) {
        accounts = new address[](3);
        (accounts[0], accounts[1], accounts[2]) = (ALICE, BOB, CAROL);
    }

    // ------------------------------------------------------------------ registration

    function test_Register_StoresOrganization() public view {
        OrganizationRegistry.Organization memory org = market.organization(ALICE);
        assertTrue(org.status == OrganizationRegistry.OrganizationStatus.Active, "status");
        assertEq(org.stake, 2 ether, "stake");
        assertEq(org.reputation, 0.5 ether, "initial reputation");
        assertEq(org.profileDigest, keccak256(PROFILE), "profile digest");
        assertEq(market.organizationCount(), 3, "count");
        assertEq(address(market).balance, 6 ether, "balance");
        address[] memory page = market.organizationsPage(1, 5);
        assertEq(page.length, 2, "page length");
        assertEq(page[0], BOB, "page order");
        assertEq(market.organizationsPage(7, 2).length, 0, "empty page");
    }

    function test_Register_EmitsEvent() public {
        vm.deal(STRANGER, 1 ether);
        vm.expectEmit(true, false, false, true);
        emit OrganizationRegistry.OrganizationRegistered(STRANGER, "s", PROFILE, KEY, 1 ether);
        vm.prank(STRANGER);
        market.register{value: 1 ether}("s", PROFILE, KEY);
    }

    function test_RevertWhen_RegisterTwice() public {
        vm.deal(ALICE, 1 ether);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.AlreadyRegistered.selector, ALICE));
        market.register{value: 1 ether}("again", PROFILE, KEY);
    }

    function test_RevertWhen_StakeTooLow() public {
        vm.deal(STRANGER, 1 ether);
        vm.prank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.StakeTooLow.selector, 0.5 ether, MIN_STAKE));
        market.register{value: 0.5 ether}("s", PROFILE, KEY);
    }

    function test_RevertWhen_NameInvalid() public {
        vm.deal(STRANGER, 2 ether);
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidName.selector);
        market.register{value: 1 ether}("", PROFILE, KEY);
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidName.selector);
        market.register{value: 1 ether}(
            "0123456789012345678901234567890123456789012345678901234567890123456789", PROFILE, KEY
        );
    }

    function test_RevertWhen_CidInvalid() public {
        vm.deal(STRANGER, 2 ether);
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.register{value: 1 ether}("s", "", KEY);
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.register{value: 1 ether}("s", new bytes(129), KEY);
    }

    function test_RevertWhen_PublicKeyInvalid() public {
        vm.deal(STRANGER, 2 ether);
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidPublicKey.selector);
        market.register{value: 1 ether}("s", PROFILE, hex"02aa");
        bytes memory badPrefix = KEY;
        badPrefix[0] = 0x04;
        vm.prank(STRANGER);
        vm.expectRevert(OrganizationRegistry.InvalidPublicKey.selector);
        market.register{value: 1 ether}("s", PROFILE, badPrefix);
    }

    function test_UpdateProfile() public {
        vm.expectEmit(true, false, false, true);
        emit OrganizationRegistry.ProfileUpdated(ALICE, hex"0171");
        vm.prank(ALICE);
        market.updateProfile(hex"0171");
        assertEq(market.organization(ALICE).profileDigest, keccak256(hex"0171"), "digest");
    }

    function test_RevertWhen_UnknownOrganizationUpdatesProfile() public {
        vm.prank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.UnknownOrganization.selector, STRANGER));
        market.updateProfile(hex"0171");
    }

    function test_AddStake() public {
        vm.deal(ALICE, 1 ether);
        vm.prank(ALICE);
        market.addStake{value: 1 ether}();
        assertEq(market.organization(ALICE).stake, 3 ether, "stake");
    }

    function test_RevertWhen_AddStakeZero() public {
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.ZeroAmount.selector);
        market.addStake();
    }

    // ------------------------------------------------------------------ exit and withdraw

    function test_ExitAfterCooldownReturnsStake() public {
        vm.prank(ALICE);
        market.requestExit();
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.CooldownNotOver.selector, height + 10));
        market.completeExit();
        _advance(10);
        vm.prank(ALICE);
        market.completeExit();
        assertTrue(market.organization(ALICE).status == OrganizationRegistry.OrganizationStatus.Exited, "exited");
        uint256 before = ALICE.balance;
        vm.prank(ALICE);
        market.withdraw();
        assertEq(ALICE.balance - before, 2 ether, "stake returned");
        assertEq(address(market).balance, 4 ether, "market balance");
    }

    function test_RevertWhen_ExitDuringOpenRound() public {
        uint256 roundId = _openRing();
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.InOpenRound.selector, BOB, roundId));
        market.requestExit();
    }

    function test_ExitAllowedWhenNotInOpenRound() public {
        _register(STRANGER, 1 ether);
        _openRing();
        vm.prank(STRANGER);
        market.requestExit();
        assertTrue(market.organization(STRANGER).status == OrganizationRegistry.OrganizationStatus.Exiting, "exiting");
    }

    function test_RevertWhen_CompleteExitWithoutRequest() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.ExitNotRequested.selector, ALICE));
        market.completeExit();
    }

    function test_RevertWhen_ExitingOrganizationIsPaired() public {
        vm.prank(CAROL);
        market.requestExit();
        (address[] memory t, address[] memory s) = _pairs(ALICE, CAROL);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.OrganizationNotActive.selector, CAROL));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_NothingToWithdraw() public {
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.NothingToWithdraw.selector);
        market.withdraw();
    }

    function test_RevertWhen_RecipientRefusesEther() public {
        EtherRefuser refuser = new EtherRefuser();
        vm.deal(address(this), 1 ether);
        refuser.register{value: 1 ether}(market, KEY);
        refuser.requestLeave(market);
        _advance(10);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.TransferFailed.selector, address(refuser)));
        refuser.finish(market);
    }

    // ------------------------------------------------------------------ parameters

    function test_SetParameters() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.exchangeFee = 0.02 ether;
        vm.prank(ADMIN);
        market.setParameters(p);
        assertEq(market.parameters().exchangeFee, 0.02 ether, "fee");
    }

    function test_RevertWhen_NonAdminSetsParameters() public {
        bytes32 adminRole = market.DEFAULT_ADMIN_ROLE();
        vm.prank(MATCHMAKER);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, MATCHMAKER, adminRole)
        );
        market.setParameters(_parameters());
    }

    function test_RevertWhen_ParametersInvalid() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.slashBps = 10_001;
        vm.prank(ADMIN);
        vm.expectRevert(OrganizationRegistry.InvalidParameters.selector);
        market.setParameters(p);
        p = _parameters();
        p.maxPairsPerRound = 257;
        vm.prank(ADMIN);
        vm.expectRevert(OrganizationRegistry.InvalidParameters.selector);
        market.setParameters(p);
        p = _parameters();
        p.exchangeFee = p.minStake + 1;
        vm.prank(ADMIN);
        vm.expectRevert(OrganizationRegistry.InvalidParameters.selector);
        market.setParameters(p);
    }

    function test_RevertWhen_ParametersChangeDuringRound() public {
        uint256 roundId = _openRing();
        vm.prank(ADMIN);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundStillOpen.selector, roundId));
        market.setParameters(_parameters());
    }

    // ------------------------------------------------------------------ opening rounds

    function test_OpenRound_EscrowsFeesAndRecordsPairs() public {
        vm.expectEmit(true, true, false, true);
        emit KnexaMarket.RoundOpened(1, POLICY, DECISION, height + 5, 3);
        _openRing();
        KnexaMarket.Round memory round = market.getRound(1);
        assertTrue(round.status == KnexaMarket.RoundStatus.Open, "open");
        assertEq(round.pairCount, 3, "pairs");
        assertEq(round.decisionDigest, keccak256(DECISION), "decision digest");
        assertEq(market.escrowedFees(), 3 * FEE, "escrow");
        assertEq(market.organization(BOB).stake, 2 ether - FEE, "student paid fee");
        assertEq(market.openRoundId(), 1, "open round id");
        assertEq(market.nextRoundId(), 2, "next id");
        KnexaMarket.Pair[] memory pairs = market.getPairs(1);
        assertEq(pairs[1].teacher, BOB, "teacher");
        assertEq(pairs[1].student, CAROL, "student");
        assertEq(market.getPair(1, 2).teacher, CAROL, "getPair");
    }

    function test_RevertWhen_NotMatchmakerOpensRound() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        bytes32 matchmakerRole = market.MATCHMAKER_ROLE();
        vm.prank(ALICE);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, ALICE, matchmakerRole)
        );
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_RoundIdOutOfOrder() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.UnexpectedRoundId.selector, 1, 2));
        market.openRound(2, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_RoundReplayed() public {
        _openRing();
        _advance(6);
        market.finalizeRound(1);
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.UnexpectedRoundId.selector, 2, 1));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_PreviousRoundStillOpen() public {
        _openRing();
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundStillOpen.selector, 1));
        market.openRound(2, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_PairListsInvalid() public {
        address[] memory none = new address[](0);
        vm.startPrank(MATCHMAKER);
        vm.expectRevert(KnexaMarket.NoPairs.selector);
        market.openRound(1, DECISION, POLICY, none, none, uint64(height + 5));
        (address[] memory t,) = _pairs(ALICE, BOB);
        address[] memory two = new address[](2);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.PairListsMismatch.selector, 1, 2));
        market.openRound(1, DECISION, POLICY, t, two, uint64(height + 5));
        vm.stopPrank();
    }

    function test_RevertWhen_TooManyPairs() public {
        address[] memory t = new address[](9);
        address[] memory s = new address[](9);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.TooManyPairs.selector, 9, 8));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_SelfPair() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, ALICE);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.SelfPair.selector, ALICE));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_DuplicateStudent() public {
        address[] memory t = new address[](2);
        address[] memory s = new address[](2);
        (t[0], s[0]) = (ALICE, CAROL);
        (t[1], s[1]) = (BOB, CAROL);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DuplicateStudent.selector, CAROL));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_TeacherMayTeachSeveralStudents() public {
        address[] memory t = new address[](2);
        address[] memory s = new address[](2);
        (t[0], s[0]) = (ALICE, BOB);
        (t[1], s[1]) = (ALICE, CAROL);
        vm.prank(MATCHMAKER);
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
        assertEq(market.getRound(1).pairCount, 2, "two pairs");
    }

    function test_StudentAtMinimumStakeMayAlsoTeach() public {
        _register(STRANGER, MIN_STAKE);
        address[] memory t = new address[](2);
        address[] memory s = new address[](2);
        (t[0], s[0]) = (ALICE, STRANGER); // STRANGER pays its fee first...
        (t[1], s[1]) = (STRANGER, BOB); // ...and is still judged by its stake before the fee as a teacher.
        vm.prank(MATCHMAKER);
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
        assertEq(market.organization(STRANGER).stake, MIN_STAKE - FEE, "fee paid");
    }

    function test_RevertWhen_UnknownOrganizationPaired() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, STRANGER);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(OrganizationRegistry.UnknownOrganization.selector, STRANGER));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_StakeBelowMinimum() public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.minStake = 3 ether;
        vm.prank(ADMIN);
        market.setParameters(p);
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        vm.prank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.StakeBelowMinimum.selector, ALICE, 2 ether, 3 ether));
        market.openRound(1, DECISION, POLICY, t, s, uint64(height + 5));
    }

    function test_RevertWhen_DeadlineOutOfRange() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        uint256 earliest = height + 2;
        uint256 latest = height + 1000;
        vm.startPrank(MATCHMAKER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlineOutOfRange.selector, earliest - 1, earliest, latest));
        market.openRound(1, DECISION, POLICY, t, s, uint64(earliest - 1));
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlineOutOfRange.selector, latest + 1, earliest, latest));
        market.openRound(1, DECISION, POLICY, t, s, uint64(latest + 1));
        vm.stopPrank();
    }

    function test_RevertWhen_DecisionCidEmpty() public {
        (address[] memory t, address[] memory s) = _pairs(ALICE, BOB);
        vm.prank(MATCHMAKER);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.openRound(1, "", POLICY, t, s, uint64(height + 5));
    }

    // ------------------------------------------------------------------ bundles and gains

    function test_PublishAndReport() public {
        _openRing();
        vm.expectEmit(true, true, true, true);
        emit KnexaMarket.BundlePublished(1, ALICE, BOB, BUNDLE);
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.expectEmit(true, true, true, true);
        emit KnexaMarket.GainReported(1, ALICE, BOB, 0.25 ether, ADAPTER);
        vm.prank(BOB);
        market.reportGain(1, ALICE, 0.25 ether, ADAPTER);
        KnexaMarket.Pair memory pair = market.getPair(1, 0);
        assertTrue(pair.bundlePublished && pair.gainReported, "flags");
        assertEq(int256(pair.gain), 0.25 ether, "gain");
        assertEq(pair.bundleDigest, keccak256(BUNDLE), "bundle digest");
        assertEq(pair.adapterDigest, keccak256(ADAPTER), "adapter digest");
    }

    function test_RevertWhen_WrongTeacherPublishes() public {
        _openRing();
        vm.prank(CAROL);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotAssignedTeacher.selector, 1, CAROL, BOB));
        market.publishBundle(1, BOB, BUNDLE);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotAssignedTeacher.selector, 1, ALICE, STRANGER));
        market.publishBundle(1, STRANGER, BUNDLE);
    }

    function test_RevertWhen_BundlePublishedTwice() public {
        _openRing();
        vm.startPrank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.BundleAlreadyPublished.selector, 1, BOB));
        market.publishBundle(1, BOB, BUNDLE);
        vm.stopPrank();
    }

    function test_RevertWhen_PublishAfterDeadline() public {
        _openRing();
        _advance(6);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlinePassed.selector, 1, height - 1));
        market.publishBundle(1, BOB, BUNDLE);
    }

    function test_RevertWhen_PublishToUnopenedRound() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundNotOpen.selector, 1));
        market.publishBundle(1, BOB, BUNDLE);
    }

    function test_RevertWhen_BundleCidEmpty() public {
        _openRing();
        vm.prank(ALICE);
        vm.expectRevert(OrganizationRegistry.InvalidCid.selector);
        market.publishBundle(1, BOB, "");
    }

    function test_RevertWhen_ReportWithoutBundle() public {
        _openRing();
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.BundleNotPublished.selector, 1, BOB));
        market.reportGain(1, ALICE, 1, ADAPTER);
    }

    function test_RevertWhen_ReportByNonStudent() public {
        _openRing();
        vm.prank(STRANGER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotAssignedStudent.selector, 1, STRANGER));
        market.reportGain(1, ALICE, 1, ADAPTER);
    }

    function test_RevertWhen_ReportNamesWrongTeacher() public {
        _openRing();
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.NotAssignedTeacher.selector, 1, CAROL, BOB));
        market.reportGain(1, CAROL, 1, ADAPTER);
    }

    function test_RevertWhen_ReportTwice() public {
        _openRing();
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.startPrank(BOB);
        market.reportGain(1, ALICE, 1, ADAPTER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.GainAlreadyReported.selector, 1, BOB));
        market.reportGain(1, ALICE, 1, ADAPTER);
        vm.stopPrank();
    }

    function test_RevertWhen_GainOutOfRange() public {
        _openRing();
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.startPrank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.GainOutOfRange.selector, int256(1 ether + 1)));
        market.reportGain(1, ALICE, 1 ether + 1, ADAPTER);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.GainOutOfRange.selector, -int256(1 ether + 1)));
        market.reportGain(1, ALICE, -(1 ether + 1), ADAPTER);
        vm.stopPrank();
    }

    function test_RevertWhen_ReportAfterDeadline() public {
        _openRing();
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        _advance(6);
        vm.prank(BOB);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlinePassed.selector, 1, height - 1));
        market.reportGain(1, ALICE, 1, ADAPTER);
    }

    // ------------------------------------------------------------------ finalization

    function test_Finalize_PaysFeesCreditsAndSlashesNoShows() public {
        _openRing();
        // ALICE -> BOB: delivered and reported (+0.5); BOB -> CAROL: delivered, CAROL never reports;
        // CAROL -> ALICE: nothing delivered.
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.prank(BOB);
        market.reportGain(1, ALICE, 0.5 ether, ADAPTER);
        vm.prank(BOB);
        market.publishBundle(1, CAROL, BUNDLE);
        _advance(6);
        vm.prank(STRANGER);
        market.finalizeRound(1);

        assertTrue(market.getRound(1).status == KnexaMarket.RoundStatus.Finalized, "finalized");
        assertEq(market.escrowedFees(), 0, "escrow released");
        assertEq(market.openRoundId(), 0, "no open round");
        // ALICE: fee from BOB, credits 0.5, slash from CAROL's missing bundle, fee refunded to stake.
        assertEq(market.organization(ALICE).credits, 0.5 ether, "credits");
        assertEq(market.organization(ALICE).stake, 2 ether, "fee refunded");
        // CAROL: stake 2 - fee = 1.99; slashed 10% for no report -> 1.791; then 10% for no bundle.
        uint256 afterFirst = 1.99 ether - 0.199 ether;
        uint256 secondSlash = afterFirst / 10;
        assertEq(market.organization(CAROL).stake, afterFirst - secondSlash, "carol slashed twice");
        assertEq(market.pendingWithdrawal(BOB), FEE + 0.199 ether, "bob: fee + carol's slash");
        assertEq(market.pendingWithdrawal(ALICE), FEE + secondSlash, "alice: fee + carol's slash");
        // Reputation: ALICE taught with gain 0.5 -> signal 0.75; as student got nothing -> unchanged.
        assertEq(market.organization(ALICE).reputation, 0.55 ether, "alice reputation");
        // BOB: reported as student (signal 1 -> 0.6), then taught unreported (0.5 -> 0.58).
        assertEq(market.organization(BOB).reputation, 0.58 ether, "bob reputation");
        // CAROL: missed report (0 -> 0.4), missed bundle (0 -> 0.32).
        assertEq(market.organization(CAROL).reputation, 0.32 ether, "carol reputation");
        assertEq(_accounted(_everyone()), address(market).balance, "conservation");
    }

    function test_RevertWhen_FinalizeBeforeDeadline() public {
        _openRing();
        _advance(5);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.DeadlineNotReached.selector, 1, height));
        market.finalizeRound(1);
    }

    function test_RevertWhen_FinalizeTwice() public {
        _openRing();
        _advance(6);
        market.finalizeRound(1);
        vm.expectRevert(abi.encodeWithSelector(KnexaMarket.RoundNotOpen.selector, 1));
        market.finalizeRound(1);
    }

    function test_NegativeGainLowersTeacherReputation() public {
        _openRing();
        vm.prank(ALICE);
        market.publishBundle(1, BOB, BUNDLE);
        vm.prank(BOB);
        market.reportGain(1, ALICE, -1 ether, ADAPTER);
        _advance(6);
        market.finalizeRound(1);
        assertEq(market.organization(ALICE).credits, 0, "no credits for harm");
        // Signal 0 (gain -1): 0.5 * 0.8 = 0.4.
        assertEq(market.organization(ALICE).reputation, 0.4 ether, "reputation");
    }

    // ------------------------------------------------------------------ fuzz: accounting

    /// @dev Random stakes, fees, slashes and behaviours over two rounds, then everyone leaves:
    ///      at every step the contract's balance equals stakes + withdrawable + escrow, and in the end
    ///      exactly what came in went out.
    function testFuzz_AccountingConserved(uint256 seed, uint96 stakeA, uint96 stakeB, uint96 stakeC, uint16 slash)
        public
    {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.slashBps = uint16(clamp(slash, 0, 10_000));
        p.exchangeFee = clamp(seed >> 200, 0, MIN_STAKE);
        vm.prank(ADMIN);
        market.setParameters(p);
        uint256 deposited = 6 ether;
        address[4] memory extra = [address(0x2001), address(0x2002), address(0x2003), address(0x2004)];
        uint96[3] memory stakes = [stakeA, stakeB, stakeC];
        for (uint256 i = 0; i < 3; ++i) {
            uint256 stake = clamp(stakes[i], MIN_STAKE, 1000 ether);
            _register(extra[i], stake);
            deposited += stake;
        }
        address[] memory everyone = new address[](6);
        (everyone[0], everyone[1], everyone[2]) = (ALICE, BOB, CAROL);
        (everyone[3], everyone[4], everyone[5]) = (extra[0], extra[1], extra[2]);

        for (uint256 r = 1; r <= 2; ++r) {
            // Slashed organizations top their stake back up to the minimum before they can be paired.
            for (uint256 i = 0; i < 6; ++i) {
                uint256 stake = market.organization(everyone[i]).stake;
                if (stake < MIN_STAKE) {
                    vm.deal(everyone[i], MIN_STAKE - stake);
                    vm.prank(everyone[i]);
                    market.addStake{value: MIN_STAKE - stake}();
                    deposited += MIN_STAKE - stake;
                }
            }
            // A rotation of the six organizations: i teaches (i + shift) mod 6.
            uint256 shift = 1 + ((seed >> (r * 8)) % 5);
            address[] memory t = new address[](6);
            address[] memory s = new address[](6);
            for (uint256 i = 0; i < 6; ++i) {
                t[i] = everyone[i];
                s[i] = everyone[(i + shift) % 6];
            }
            vm.prank(MATCHMAKER);
            market.openRound(r, DECISION, POLICY, t, s, uint64(height + 3));
            assertEq(_accounted(everyone), address(market).balance, "after open");
            for (uint256 i = 0; i < 6; ++i) {
                uint256 behaviour = (seed >> (r * 32 + i * 4)) & 0xf;
                if (behaviour & 1 == 1) {
                    vm.prank(t[i]);
                    market.publishBundle(r, s[i], BUNDLE);
                    if (behaviour & 2 == 2) {
                        int256 gain = int256(clamp(uint256(keccak256(abi.encode(seed, r, i))), 0, 2 ether)) - 1 ether;
                        vm.prank(s[i]);
                        market.reportGain(r, t[i], gain, ADAPTER);
                    }
                }
            }
            _advance(4);
            market.finalizeRound(r);
            assertEq(_accounted(everyone), address(market).balance, "after finalize");
        }

        uint256 withdrawn;
        for (uint256 i = 0; i < 6; ++i) {
            vm.prank(everyone[i]);
            market.requestExit();
        }
        _advance(10);
        for (uint256 i = 0; i < 6; ++i) {
            vm.deal(everyone[i], 0);
            uint256 before = everyone[i].balance;
            vm.startPrank(everyone[i]);
            market.completeExit();
            if (market.pendingWithdrawal(everyone[i]) > 0) market.withdraw();
            vm.stopPrank();
            withdrawn += everyone[i].balance - before;
        }
        assertEq(withdrawn, deposited, "everything that came in went out");
        assertEq(address(market).balance, 0, "nothing left behind");
    }

    /// @dev Reputation stays in [0, 1] whatever gains are reported.
    function testFuzz_ReputationBounded(int256 gainA, int256 gainB, uint16 weight) public {
        OrganizationRegistry.MarketParameters memory p = _parameters();
        p.reputationWeightBps = uint16(clamp(weight, 1, 10_000));
        vm.prank(ADMIN);
        market.setParameters(p);
        int256[2] memory gains = [gainA, gainB];
        for (uint256 r = 1; r <= 2; ++r) {
            _openRing();
            vm.prank(ALICE);
            market.publishBundle(r, BOB, BUNDLE);
            int256 gain = int256(clamp(uint256(gains[r - 1]), 0, 2 ether)) - 1 ether;
            vm.prank(BOB);
            market.reportGain(r, ALICE, gain, ADAPTER);
            _advance(6);
            market.finalizeRound(r);
        }
        address[] memory all = _everyone();
        for (uint256 i = 0; i < all.length; ++i) {
            assertTrue(market.organization(all[i]).reputation <= 1 ether, "reputation <= 1");
        }
    }
}
