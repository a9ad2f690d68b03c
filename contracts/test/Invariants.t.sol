// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {KnexaMarket} from "../src/KnexaMarket.sol";
import {OrganizationRegistry} from "../src/OrganizationRegistry.sol";
import {MarketFixture, PairTree} from "./MarketFixture.sol";
import {Log} from "./Vm.sol";

/// @notice Drives the market with random sequences of every action by several actors: register,
///         addStake, open (teachers of several students), publish (good or garbage bundles), report,
///         dispute (founded or not), verdicts, settle, exits mid-history and withdrawals.
///         Ghost state records what happened, so that invariants can check every slash against it.
contract MarketHandler is MarketFixture {
    uint256 internal constant ACTORS = 6;
    address[] public actors;
    /// @dev Ghost facts about each pair of the open round.
    mapping(uint256 round => mapping(uint256 index => bool)) public garbage;
    mapping(uint256 round => mapping(uint256 index => bool)) public published;
    mapping(uint256 round => mapping(uint256 index => bool)) public reported;
    mapping(uint256 round => mapping(uint256 index => bool)) public disputed;
    uint256 public deposited;
    uint256 public withdrawn;
    uint256 public unjustifiedSlashes;
    uint256 public slashes;
    uint256 public settledRounds;
    /// @dev Rounds closed without a pair list (every pair settled by then).
    uint256 public listlessSettlements;
    /// @dev Listless settlements that closed a round with a pair left, or were refused with none left.
    uint256 public skippedSettlements;
    bytes32 internal constant PAIR_SETTLED =
        keccak256("PairSettled(uint256,address,address,uint256,uint8,address,uint256,uint256,uint256,bytes)");

    constructor() {
        _deploy();
        for (uint256 i = 0; i < ACTORS; ++i) {
            actors.push(address(uint160(0x5000 + i)));
        }
    }

    function everyone() external view returns (address[] memory) {
        return actors;
    }

    function marketAddress() external view returns (KnexaMarket) {
        return market;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % ACTORS];
    }

    function _status(address who) internal view returns (OrganizationRegistry.OrganizationStatus) {
        return market.organization(who).status;
    }

    function _isOpen() internal view returns (bool) {
        return roundId != 0 && market.openRoundId() == roundId;
    }

    // ------------------------------------------------------------------ actions

    function register(uint256 seed, uint256 stake) external {
        address who = _actor(seed);
        if (_status(who) != OrganizationRegistry.OrganizationStatus.None) return;
        stake = clamp(stake, MIN_STAKE, 5 ether);
        _register(who, stake);
        deposited += stake;
    }

    function addStake(uint256 seed, uint256 amount) external {
        address who = _actor(seed);
        if (_status(who) != OrganizationRegistry.OrganizationStatus.Active) return;
        amount = clamp(amount, 1, 1 ether);
        vm.deal(who, who.balance + amount);
        vm.prank(who);
        market.addStake{value: amount}();
        deposited += amount;
    }

    function open(uint256 seed) external {
        if (market.openRoundId() != 0) return;
        address[] memory pool = new address[](ACTORS);
        uint256 n;
        for (uint256 i = 0; i < ACTORS; ++i) {
            OrganizationRegistry.Organization memory org = market.organization(actors[i]);
            if (org.status == OrganizationRegistry.OrganizationStatus.Active && org.stake >= MIN_STAKE) {
                pool[n++] = actors[i];
            }
        }
        if (n < 2) return;
        // each eligible organization is a student at most once; its teacher is a random other one,
        // taken from the first three (so teachers often have several students, up to capacity 2)
        address[] memory teachers = new address[](n);
        address[] memory students = new address[](n);
        uint256[] memory load = new uint256[](n);
        uint256 count;
        for (uint256 s = 0; s < n; ++s) {
            if ((seed >> s) & 1 == 1 && count > 0) continue; // some organizations sit out
            uint256 t = (seed >> (8 + s * 4)) % (n < 3 ? n : 3);
            if (t == s) t = (t + 1) % n;
            if (load[t] >= 2) continue;
            load[t] += 1;
            teachers[count] = pool[t];
            students[count] = pool[s];
            count += 1;
        }
        assembly ("memory-safe") {
            mstore(teachers, count)
            mstore(students, count)
        }
        _open(teachers, students);
    }

    function publish(uint256 index, bool isGarbage) external {
        if (!_isOpen() || roundTeachers.length == 0) return;
        index %= roundTeachers.length;
        if (published[roundId][index] || height > market.getRound(roundId).publishDeadline) return;
        _publish(index);
        published[roundId][index] = true;
        garbage[roundId][index] = isGarbage;
    }

    function report(uint256 index, int256 gain) external {
        if (!_isOpen() || roundTeachers.length == 0) return;
        index %= roundTeachers.length;
        if (!published[roundId][index] || reported[roundId][index] || disputed[roundId][index]) return;
        if (height > market.getRound(roundId).reportDeadline) return;
        gain = gain % 1e18;
        _report(index, gain);
        reported[roundId][index] = true;
    }

    function dispute(uint256 index) external {
        if (!_isOpen() || roundTeachers.length == 0) return;
        index %= roundTeachers.length;
        if (!published[roundId][index] || reported[roundId][index] || disputed[roundId][index]) return;
        if (height > market.getRound(roundId).reportDeadline) return;
        if (_stake(roundStudents[index]) < BOND) return;
        _dispute(index);
        disputed[roundId][index] = true;
    }

    /// @dev The arbiter rules from the evidence: defective exactly when the bundle was garbage.
    function rule(uint256 index) external {
        if (!_isOpen() || roundTeachers.length == 0) return;
        index %= roundTeachers.length;
        if (!disputed[roundId][index] || market.pairState(roundId, index) != KnexaMarket.PairState.Disputed) return;
        KnexaMarket.Round memory round = market.getRound(roundId);
        if (height <= round.publishDeadline || height > round.verdictDeadline) return;
        vm.recordLogs();
        _rule(index, garbage[roundId][index]);
        _checkSlashes(vm.getRecordedLogs());
    }

    /// @dev Settle, trying first without the pair list when `withoutList`: that must fail exactly
    ///      while a pair is left to settle (a pending pair may never be skipped).
    function settle(bool withoutList) external {
        if (!_isOpen()) return;
        KnexaMarket.Round memory round = market.getRound(roundId);
        uint256 closesAfter = round.openDisputes != 0 ? round.verdictDeadline : round.reportDeadline;
        if (height <= closesAfter) return;
        bool pending = market.unsettledPairs(roundId) != 0;
        vm.recordLogs();
        if (withoutList) {
            try market.settleRound(roundId, "") {
                if (pending) skippedSettlements += 1;
                else listlessSettlements += 1;
            } catch {
                if (!pending) skippedSettlements += 1; // refused although nothing was left
            }
        }
        if (_isOpen()) _settle();
        _checkSlashes(vm.getRecordedLogs());
        settledRounds += 1;
    }

    function requestExit(uint256 seed) external {
        address who = _actor(seed);
        if (_status(who) != OrganizationRegistry.OrganizationStatus.Active) return;
        vm.prank(who);
        market.requestExit();
    }

    function completeExit(uint256 seed) external {
        address who = _actor(seed);
        OrganizationRegistry.Organization memory org = market.organization(who);
        if (org.status != OrganizationRegistry.OrganizationStatus.Exiting || height < org.exitAvailableAtBlock) return;
        uint256 holding = market.openRoundId();
        if (holding != 0 && market.getRound(holding).openedAtBlock <= org.exitRequestedAtBlock) return;
        vm.prank(who);
        market.completeExit();
    }

    function withdraw(uint256 seed) external {
        address who = _actor(seed);
        uint256 amount = market.pendingWithdrawal(who);
        if (amount == 0) return;
        vm.prank(who);
        market.withdraw();
        withdrawn += amount;
    }

    function advance(uint256 blocks) external {
        _advance(clamp(blocks, 1, 6));
    }

    // ------------------------------------------------------------------ ghost checks

    /// @dev Every slash must match a fact: no bundle, a bundle without report or dispute, or a
    ///      dispute whose bundle was garbage.
    function _checkSlashes(Log[] memory logs) internal {
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics.length == 0 || logs[i].topics[0] != PAIR_SETTLED) continue;
            uint256 round = uint256(logs[i].topics[1]);
            (uint256 index, uint8 outcome, address offender, uint256 slashed,,,) =
                abi.decode(logs[i].data, (uint256, uint8, address, uint256, uint256, uint256, bytes));
            if (slashed == 0) continue;
            slashes += 1;
            address teacher = address(uint160(uint256(logs[i].topics[2])));
            address student = address(uint160(uint256(logs[i].topics[3])));
            bool justified;
            if (outcome == uint8(KnexaMarket.Outcome.NoBundle)) {
                justified = !published[round][index] && offender == teacher;
            } else if (outcome == uint8(KnexaMarket.Outcome.NoReport)) {
                justified = published[round][index] && !reported[round][index] && !disputed[round][index]
                    && offender == student;
            } else if (outcome == uint8(KnexaMarket.Outcome.Defective)) {
                justified = disputed[round][index] && garbage[round][index] && offender == teacher;
            }
            if (!justified) unjustifiedSlashes += 1;
        }
    }

    /// @dev Fees the contract should hold: one per delivered pair of the open round not yet settled.
    function expectedEscrow() external view returns (uint256 fees, uint256 bonds) {
        if (!_isOpen()) return (0, 0);
        for (uint256 i = 0; i < roundTeachers.length; ++i) {
            KnexaMarket.PairState state = market.pairState(roundId, i);
            if (published[roundId][i] && state != KnexaMarket.PairState.Settled) fees += FEE;
            if (state == KnexaMarket.PairState.Disputed) bonds += BOND;
        }
    }
}

contract KnexaMarketInvariants {
    MarketHandler internal handler;

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    function setUp() public {
        handler = new MarketHandler();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory selectors) {
        bytes4[] memory actions = new bytes4[](13);
        actions[0] = MarketHandler.register.selector;
        actions[1] = MarketHandler.addStake.selector;
        actions[2] = MarketHandler.open.selector;
        actions[3] = MarketHandler.publish.selector;
        actions[4] = MarketHandler.report.selector;
        actions[5] = MarketHandler.dispute.selector;
        actions[6] = MarketHandler.rule.selector;
        actions[7] = MarketHandler.settle.selector;
        actions[8] = MarketHandler.requestExit.selector;
        actions[9] = MarketHandler.completeExit.selector;
        actions[10] = MarketHandler.withdraw.selector;
        actions[11] = MarketHandler.advance.selector;
        actions[12] = MarketHandler.advance.selector;
        selectors = new FuzzSelector[](1);
        selectors[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    error InvariantBroken(string what, uint256 left, uint256 right);

    function _accounted() internal view returns (uint256 total) {
        KnexaMarket market = handler.marketAddress();
        address[] memory everyone = handler.everyone();
        for (uint256 i = 0; i < everyone.length; ++i) {
            total += market.organization(everyone[i]).stake + market.pendingWithdrawal(everyone[i]);
        }
        total += market.escrowedFees() + market.heldBonds();
    }

    function _noWeiCreatedOrLost() internal view {
        uint256 balance = address(handler.marketAddress()).balance;
        if (balance != _accounted()) revert InvariantBroken("balance == accounted", balance, _accounted());
        uint256 net = handler.deposited() - handler.withdrawn();
        if (balance != net) revert InvariantBroken("balance == deposited - withdrawn", balance, net);
    }

    function _noSlashWithoutEvidence() internal view {
        if (handler.unjustifiedSlashes() != 0) revert InvariantBroken("unjustified slashes", handler.unjustifiedSlashes(), 0);
        if (handler.skippedSettlements() != 0) revert InvariantBroken("no pair skipped", handler.skippedSettlements(), 0);
    }

    function _reputationInUnitInterval() internal view {
        KnexaMarket market = handler.marketAddress();
        address[] memory everyone = handler.everyone();
        for (uint256 i = 0; i < everyone.length; ++i) {
            uint256 reputation = market.organization(everyone[i]).reputation;
            if (reputation > 1e18) revert InvariantBroken("reputation <= 1", reputation, 1e18);
        }
    }

    function _escrowEqualsOpenFees() internal view {
        KnexaMarket market = handler.marketAddress();
        (uint256 fees, uint256 bonds) = handler.expectedEscrow();
        if (market.escrowedFees() != fees) revert InvariantBroken("escrow == open fees", market.escrowedFees(), fees);
        if (market.heldBonds() != bonds) revert InvariantBroken("bonds == open disputes", market.heldBonds(), bonds);
    }

    /// @dev One campaign checks all four invariants after every call (four campaigns would cost 4x).
    function invariant_Market() public view {
        _noWeiCreatedOrLost();
        _noSlashWithoutEvidence();
        _reputationInUnitInterval();
        _escrowEqualsOpenFees();
    }

    /// @dev The handler reaches settlement, slashes, verdicts and exits (so the invariants are not vacuous).
    function test_HandlerReachesEveryPath() public {
        address[] memory everyone = handler.everyone();
        for (uint256 i = 0; i < everyone.length; ++i) {
            handler.register(i, 2 ether);
        }
        for (uint256 r = 0; r < 6; ++r) {
            handler.open(r * 7919 + 3);
            handler.publish(0, true);
            handler.publish(1, false);
            handler.publish(2, true);
            handler.report(1, 0.3e18);
            handler.dispute(0);
            handler.dispute(2);
            if (r == 2) handler.requestExit(3);
            handler.advance(3);
            handler.rule(0);
            handler.advance(6);
            handler.advance(6);
            handler.settle(r % 2 == 0);
            handler.completeExit(3);
            handler.withdraw(r);
        }
        // a round where every pair was settled before the deadline closes without its list
        handler.open(5);
        for (uint256 i = 0; i < 6; ++i) {
            handler.publish(i, false);
            handler.report(i, 0.1e18);
        }
        handler.advance(6);
        handler.settle(true);
        invariant_Market();
        if (handler.settledRounds() < 3 || handler.slashes() == 0) {
            revert InvariantBroken("handler paths", handler.settledRounds(), handler.slashes());
        }
        if (handler.listlessSettlements() == 0) revert InvariantBroken("listless settlement", 0, 1);
    }
}
