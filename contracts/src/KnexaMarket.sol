// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {OrganizationRegistry} from "./OrganizationRegistry.sol";

/// @title KnexaMarket (round protocol v2)
/// @notice The knexa marketplace. Each round the matchmaker commits its pairing decision: the list
///         of directed pairs (teacher -> student), checked against the contract's bounds (teacher
///         capacity, one pair per student, active and staked members, minimum round length) and
///         reduced to a Merkle root. Every later step (publish, report, dispute, verdict) carries a
///         proof against that root, so nothing per pair is stored at opening.
///         Teachers publish a sealed bundle's CID by the publish deadline, which escrows the student's
///         fee; the student has at least `minReportWindowBlocks` more to report its gain (which
///         settles the pair at once: fee to the teacher, pair-decayed credits, reputations) or to
///         dispute a defective bundle with evidence. The arbiter rules on disputes; anyone settles
///         the rest after the deadlines: no-shows are slashed, unresolved disputes refunded.
/// @dev One round is open at a time; rounds are numbered 1, 2, 3, ... without gaps.
///      Leaf of pair `i` of round `r`: keccak256(bytes.concat(keccak256(abi.encode(r, i, teacher, student)))).
///      Tree: leaves in pair order; each level hashes neighbours (2j, 2j+1) with the commutative
///      keccak256 of OpenZeppelin's MerkleProof; an odd last node moves up unchanged.
contract KnexaMarket is OrganizationRegistry {
    /// @notice Role allowed to open rounds.
    bytes32 public constant MATCHMAKER_ROLE = keccak256("MATCHMAKER_ROLE");
    /// @notice Role allowed to rule on disputes (its verdicts are replayable from the evidence).
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @notice Largest magnitude of a reported gain (a Pass-at-1 difference lies in [-1, 1]).
    // forge-lint: disable-next-line(unsafe-typecast) WAD (1e18) is far below type(int256).max
    int256 public constant MAX_ABS_GAIN = int256(WAD);
    /// @notice Bytes per pair in `openRound`'s packed pair list: 20-byte teacher, 20-byte student.
    uint256 public constant PAIR_BYTES = 40;

    /// @notice Life cycle of a round.
    enum RoundStatus {
        None,
        Open,
        Finalized
    }

    /// @notice Where one pair stands (2 bits per pair on chain).
    enum PairState {
        Assigned,
        Published,
        Disputed,
        Settled
    }

    /// @notice How a pair was settled.
    enum Outcome {
        Reported,
        NoBundle,
        NoReport,
        Defective,
        Unfounded,
        Unresolved
    }

    /// @notice On-chain state of one round.
    /// @param status life-cycle state
    /// @param openedAtBlock block the round was opened in
    /// @param publishDeadline last block in which bundles may be published
    /// @param reportDeadline last block in which gains may be reported or bundles disputed
    /// @param verdictDeadline last block in which the arbiter may rule on a dispute
    /// @param pairCount number of directed pairs
    /// @param openDisputes disputes without a verdict yet
    /// @param pairsRoot Merkle root of the pairs
    /// @param exchangeFee fee per delivered bundle (the terms the round settles under)
    /// @param disputeBond bond of a dispute in this round
    struct Round {
        RoundStatus status;
        uint40 openedAtBlock;
        uint40 publishDeadline;
        uint40 reportDeadline;
        uint40 verdictDeadline;
        uint32 pairCount;
        uint32 openDisputes;
        bytes32 pairsRoot;
        uint96 exchangeFee;
        uint96 disputeBond;
    }

    /// @dev Repeats of one directed pair inside its current credit window.
    struct PairHistory {
        uint32 windowStartRound;
        uint32 repeats;
    }

    /// @dev The terms settlement works with, read once per call.
    struct Terms {
        uint256 roundId;
        uint256 fee;
        uint256 bond;
        uint256 slashBps;
        uint256 weightBps;
    }

    uint256 public nextRoundId = 1;
    mapping(uint256 roundId => Round) internal _rounds;
    /// @dev 2-bit PairState per pair, 128 pairs per word.
    mapping(uint256 roundId => mapping(uint256 word => uint256)) internal _pairStates;
    mapping(address teacher => mapping(address student => PairHistory)) internal _history;

    uint256 private constant _STUDENT_TAG = 1 << 160;
    uint256 private constant _TEACHER_TAG = 2 << 160;

    /// @notice The matchmaker opened round `roundId`; `pairs` is the packed pair list (teacher ‖ student,
    ///         20 bytes each, in pair order) whose Merkle root is `pairsRoot`.
    event RoundOpened(
        uint256 indexed roundId,
        bytes32 indexed policyDigest,
        bytes32 pairsRoot,
        bytes decisionCid,
        uint256 publishDeadline,
        uint256 reportDeadline,
        uint256 verdictDeadline,
        uint256 pairCount,
        uint256 exchangeFee,
        uint256 disputeBond,
        bytes pairs
    );
    /// @notice `teacher` published the CID of the bundle for `student`; the student's fee is escrowed.
    event BundlePublished(
        uint256 indexed roundId, address indexed teacher, address indexed student, uint256 pairIndex, bytes bundleCid
    );
    /// @notice `student` reported `gain`; the pair is settled: the fee went to `teacher`, which earned
    ///         `credits` (decayed by repeats of the pair), and both reputations moved to the values given.
    event GainReported(
        uint256 indexed roundId,
        address indexed teacher,
        address indexed student,
        uint256 pairIndex,
        int256 gain,
        uint256 credits,
        uint256 teacherReputation,
        uint256 studentReputation,
        bytes adapterCid
    );
    /// @notice `student` disputed `teacher`'s bundle, putting up `bond`; `evidenceCid` names the evidence
    ///         document (it reveals the bundle's key so that anyone can open and check the bundle).
    event DisputeOpened(
        uint256 indexed roundId,
        address indexed teacher,
        address indexed student,
        uint256 pairIndex,
        uint256 bond,
        bytes evidenceCid
    );
    /// @notice A pair was settled other than by a report: by a verdict (Defective, Unfounded), or after
    ///         the deadlines (NoBundle, NoReport, Unresolved). `slashed` wei of `offender`'s stake went
    ///         to its counterparty; reputations moved to the values given.
    event PairSettled(
        uint256 indexed roundId,
        address indexed teacher,
        address indexed student,
        uint256 pairIndex,
        Outcome outcome,
        address offender,
        uint256 slashed,
        uint256 teacherReputation,
        uint256 studentReputation,
        bytes verdictCid
    );
    /// @notice Round `roundId` was settled by `finalizer`; `settledNow` pairs were settled in that call.
    event RoundFinalized(uint256 indexed roundId, address indexed finalizer, uint256 settledNow);

    /// @notice `given` is not the next round id `expected`.
    error UnexpectedRoundId(uint256 expected, uint256 given);
    /// @notice Round `roundId` is still open.
    error RoundStillOpen(uint256 roundId);
    /// @notice The pair list is empty or not a multiple of PAIR_BYTES.
    error InvalidPairList(uint256 length);
    /// @notice `count` pairs exceed the maximum `maximum`.
    error TooManyPairs(uint256 count, uint256 maximum);
    /// @notice A deadline lies outside the allowed range.
    error DeadlineOutOfRange(uint256 deadline, uint256 earliest, uint256 latest);
    /// @notice A pair would have the same organization as teacher and student.
    error SelfPair(address organization);
    /// @notice `student` appears twice as a student in one round.
    error DuplicateStudent(address student);
    /// @notice `teacher` would have more than `capacity` students in one round.
    error TeacherOverCapacity(address teacher, uint256 capacity);
    /// @notice `organization` holds `stake` wei, below `minStake`.
    error StakeBelowMinimum(address organization, uint256 stake, uint256 minStake);
    /// @notice Round `roundId` is not open.
    error RoundNotOpen(uint256 roundId);
    /// @notice The proof does not place (teacher, student) at `pairIndex` of round `roundId`.
    error NotInRound(uint256 roundId, uint256 pairIndex, address teacher, address student);
    /// @notice The deadline `deadline` has passed.
    error DeadlinePassed(uint256 roundId, uint256 deadline);
    /// @notice The deadline `deadline` has not passed yet.
    error DeadlineNotReached(uint256 roundId, uint256 deadline);
    /// @notice The pair is not in the state the call needs.
    error WrongPairState(uint256 roundId, uint256 pairIndex, PairState state);
    /// @notice `gain` lies outside [-1e18, 1e18].
    error GainOutOfRange(int256 gain);
    /// @notice The pair list given to settle does not hash to the round's root.
    error PairsMismatch(uint256 roundId);
    /// @notice `student` holds `stake` wei, less than the `bond` a dispute needs.
    error BondNotCovered(address student, uint256 stake, uint256 bond);
    /// @notice Verdicts are given after the publish deadline, so that no slash precedes any publish.
    error VerdictTooEarly(uint256 roundId, uint256 publishDeadline);

    /// @param admin account holding DEFAULT_ADMIN_ROLE (grants roles, sets parameters)
    /// @param matchmaker account holding MATCHMAKER_ROLE and ARBITER_ROLE from the start
    /// @param initialParameters market parameters
    constructor(address admin, address matchmaker, MarketParameters memory initialParameters)
        OrganizationRegistry(admin, initialParameters)
    {
        _grantRole(MATCHMAKER_ROLE, matchmaker);
        _grantRole(ARBITER_ROLE, matchmaker);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice Commit the matchmaker's decision for round `roundId` and open it.
    /// @dev O(pairs) reads and transient writes, O(1) storage writes. Both members of every pair must
    ///      be active and hold at least `minStake`; a student appears at most once; a teacher has at
    ///      most `teacherCapacity` students. No fee moves yet: it is escrowed when the bundle arrives.
    /// @param roundId must equal `nextRoundId`, which makes replays and out-of-order calls fail
    /// @param decisionCid CID of the decision record (contexts, scores, policy, the pair leaves, the root)
    /// @param policyDigest digest of the matchmaker's declared policy parameters
    /// @param pairs packed pair list, PAIR_BYTES per pair: teacher (20 bytes) then student (20 bytes)
    /// @param publishDeadline last block for bundles, in [now + minRoundBlocks, now + maxRoundBlocks]
    /// @param reportDeadline last block for reports and disputes, at least publishDeadline + minReportWindowBlocks
    function openRound(
        uint256 roundId,
        bytes calldata decisionCid,
        bytes32 policyDigest,
        bytes calldata pairs,
        uint64 publishDeadline,
        uint64 reportDeadline
    ) external onlyRole(MATCHMAKER_ROLE) {
        if (roundId != nextRoundId) revert UnexpectedRoundId(nextRoundId, roundId);
        _requireNoOpenRound();
        _requireValidCid(decisionCid);
        uint256 count = pairs.length / PAIR_BYTES;
        if (count == 0 || pairs.length % PAIR_BYTES != 0) revert InvalidPairList(pairs.length);
        MarketParameters memory p = _parameters;
        if (count > p.maxPairsPerRound) revert TooManyPairs(count, p.maxPairsPerRound);
        _checkDeadlines(p, publishDeadline, reportDeadline);

        bytes32[] memory leaves = new bytes32[](count);
        uint256 capacity = p.teacherCapacity;
        uint256 minStake = p.minStake;
        for (uint256 i = 0; i < count; ++i) {
            (address teacher, address student) = _pairAt(pairs, i);
            if (teacher == student) revert SelfPair(teacher);
            if (_tincrement(roundId, _STUDENT_TAG, student) > 1) revert DuplicateStudent(student);
            if (_tincrement(roundId, _TEACHER_TAG, teacher) > capacity) revert TeacherOverCapacity(teacher, capacity);
            _requirePairable(teacher, minStake);
            _requirePairable(student, minStake);
            leaves[i] = pairLeaf(roundId, i, teacher, student);
        }
        bytes32 root = _rootInPlace(leaves);

        uint256 verdictDeadline = uint256(reportDeadline) + p.verdictWindowBlocks;
        nextRoundId = roundId + 1;
        // forge-lint: disable-next-item(unsafe-typecast) block numbers and deadlines fit 40 bits; count <= 2048
        _rounds[roundId] = Round({
            status: RoundStatus.Open,
            openedAtBlock: uint40(block.number),
            publishDeadline: uint40(publishDeadline),
            reportDeadline: uint40(reportDeadline),
            verdictDeadline: uint40(verdictDeadline),
            pairCount: uint32(count),
            openDisputes: 0,
            pairsRoot: root,
            exchangeFee: p.exchangeFee,
            disputeBond: p.disputeBond
        });
        emit RoundOpened(
            roundId,
            policyDigest,
            root,
            decisionCid,
            publishDeadline,
            reportDeadline,
            verdictDeadline,
            count,
            p.exchangeFee,
            p.disputeBond,
            pairs
        );
    }

    /// @notice As the teacher of pair `pairIndex`, publish the sealed bundle's CID for `student`.
    ///         Escrows the student's exchange fee from its stake.
    /// @param roundId an open round whose publish deadline has not passed
    /// @param pairIndex index of the caller's pair in the round's pair list
    /// @param student the student of that pair
    /// @param bundleCid CID of the sealed knowledge bundle
    /// @param proof Merkle proof of the pair's leaf
    function publishBundle(
        uint256 roundId,
        uint256 pairIndex,
        address student,
        bytes calldata bundleCid,
        bytes32[] calldata proof
    ) external {
        Round storage round = _requireOpen(roundId);
        if (block.number > round.publishDeadline) revert DeadlinePassed(roundId, round.publishDeadline);
        _requireValidCid(bundleCid);
        _requireMember(round, roundId, pairIndex, msg.sender, student, proof);
        _requireState(roundId, pairIndex, PairState.Assigned);
        _setState(roundId, pairIndex, PairState.Published);
        uint96 fee = round.exchangeFee;
        // Cannot underflow: the student held >= minStake >= fee + bond at opening, pays one fee per
        // round, and no slash happens before the publish deadline (verdicts wait for it).
        _orgs[student].stake -= fee;
        _escrowedFees += fee;
        emit BundlePublished(roundId, msg.sender, student, pairIndex, bundleCid);
    }

    /// @notice As the student of pair `pairIndex`, report the Pass-at-1 gain measured after distilling
    ///         `teacher`'s bundle, and commit to the resulting adapter. Settles the pair at once.
    /// @dev The gain is the student's own bandit reward. It never lowers the teacher's reputation or
    ///      stake: the teacher's reputation follows delivery only, and only a positive gain earns credits,
    ///      halved for every earlier report of the same directed pair inside `creditWindowRounds`.
    /// @param roundId an open round whose report deadline has not passed
    /// @param pairIndex index of the caller's pair
    /// @param teacher the caller's teacher in that pair
    /// @param gain measured gain, WAD-scaled, in [-1e18, 1e18]
    /// @param adapterCid CID of the student's post-round adapter commitment
    /// @param proof Merkle proof of the pair's leaf
    function reportGain(
        uint256 roundId,
        uint256 pairIndex,
        address teacher,
        int256 gain,
        bytes calldata adapterCid,
        bytes32[] calldata proof
    ) external {
        Round storage round = _requireOpen(roundId);
        if (block.number > round.reportDeadline) revert DeadlinePassed(roundId, round.reportDeadline);
        if (gain > MAX_ABS_GAIN || gain < -MAX_ABS_GAIN) revert GainOutOfRange(gain);
        _requireValidCid(adapterCid);
        _requireMember(round, roundId, pairIndex, teacher, msg.sender, proof);
        _requireState(roundId, pairIndex, PairState.Published);
        _setState(roundId, pairIndex, PairState.Settled);

        uint96 fee = round.exchangeFee;
        _escrowedFees -= fee;
        uint256 credits = _decayedCredits(roundId, teacher, msg.sender, gain);
        // The fee and the credits in one store of the teacher's account word.
        OrgAccount memory account = _accounts[teacher];
        account.withdrawable += fee;
        // forge-lint: disable-next-line(unsafe-typecast) credits <= |gain| <= 1e18
        account.credits += uint96(credits);
        _accounts[teacher] = account;
        uint256 weight = _parameters.reputationWeightBps;
        uint256 teacherReputation = _moveReputation(_orgs[teacher], WAD, weight);
        uint256 studentReputation = _moveReputation(_orgs[msg.sender], WAD, weight);
        emit GainReported(
            roundId, teacher, msg.sender, pairIndex, gain, credits, teacherReputation, studentReputation, adapterCid
        );
    }

    /// @notice As the student of pair `pairIndex`, dispute `teacher`'s bundle as defective (it does not
    ///         open with the student's key, is not signed by the teacher, is addressed to someone else,
    ///         or its content is invalid). Puts up the round's dispute bond from the student's stake.
    /// @param roundId an open round whose report deadline has not passed
    /// @param pairIndex index of the caller's pair
    /// @param teacher the caller's teacher in that pair
    /// @param evidenceCid CID of the evidence document (reveals the bundle's ECIES shared secret)
    /// @param proof Merkle proof of the pair's leaf
    function disputeBundle(
        uint256 roundId,
        uint256 pairIndex,
        address teacher,
        bytes calldata evidenceCid,
        bytes32[] calldata proof
    ) external {
        Round storage round = _requireOpen(roundId);
        if (block.number > round.reportDeadline) revert DeadlinePassed(roundId, round.reportDeadline);
        _requireValidCid(evidenceCid);
        _requireMember(round, roundId, pairIndex, teacher, msg.sender, proof);
        _requireState(roundId, pairIndex, PairState.Published);
        uint96 bond = round.disputeBond;
        OrgState storage student = _orgs[msg.sender];
        if (student.stake < bond) revert BondNotCovered(msg.sender, student.stake, bond);
        _setState(roundId, pairIndex, PairState.Disputed);
        student.stake -= bond;
        _heldBonds += bond;
        round.openDisputes += 1;
        emit DisputeOpened(roundId, teacher, msg.sender, pairIndex, bond, evidenceCid);
    }

    /// @notice As the arbiter, rule on the dispute of pair `pairIndex`. Defective: the fee and bond go
    ///         back to the student, and the teacher loses `slashBps` of its stake to the student.
    ///         Unfounded: fee and bond go to the teacher, and the student's reputation drops.
    /// @param roundId an open round, after its publish deadline and not after its verdict deadline
    /// @param pairIndex index of the disputed pair
    /// @param teacher teacher of that pair
    /// @param student student of that pair (the disputer)
    /// @param defective the verdict
    /// @param verdictCid CID of the verdict document (what was checked, so that replay can redo it)
    /// @param proof Merkle proof of the pair's leaf
    function resolveDispute(
        uint256 roundId,
        uint256 pairIndex,
        address teacher,
        address student,
        bool defective,
        bytes calldata verdictCid,
        bytes32[] calldata proof
    ) external onlyRole(ARBITER_ROLE) {
        Round storage round = _requireOpen(roundId);
        if (block.number <= round.publishDeadline) revert VerdictTooEarly(roundId, round.publishDeadline);
        if (block.number > round.verdictDeadline) revert DeadlinePassed(roundId, round.verdictDeadline);
        _requireValidCid(verdictCid);
        _requireMember(round, roundId, pairIndex, teacher, student, proof);
        _requireState(roundId, pairIndex, PairState.Disputed);
        _setState(roundId, pairIndex, PairState.Settled);
        round.openDisputes -= 1;
        Terms memory terms = _terms(roundId, round);
        _escrowedFees -= terms.fee;
        _heldBonds -= terms.bond;
        _settleDisputed(terms, pairIndex, teacher, student, defective ? Outcome.Defective : Outcome.Unfounded, verdictCid);
    }

    /// @notice Settle every pair of round `roundId` not settled yet, and close the round. Anyone may
    ///         call it after the report deadline (after the verdict deadline if disputes are open),
    ///         with the round's pair list (from its RoundOpened event or the decision record).
    /// @dev No bundle: the teacher loses `slashBps` of its stake to the student. A bundle but no report
    ///      or dispute: the fee goes to the teacher and the student loses `slashBps` to it. A dispute
    ///      without verdict: fee and bond go back to the student, nobody is slashed.
    ///      When every pair is settled already (the normal case: each report settles its pair), the
    ///      2-bit pair states say so (ceil(pairCount / 128) words) and `pairs` is not read: it may be
    ///      empty, and the list is not re-hashed. Otherwise it must hash to the round's root.
    /// @param roundId an open round
    /// @param pairs the packed pair list the round was opened with (may be empty if no pair is left)
    function settleRound(uint256 roundId, bytes calldata pairs) external {
        Round storage round = _requireOpen(roundId);
        uint256 closesAfter = round.openDisputes != 0 ? round.verdictDeadline : round.reportDeadline;
        if (block.number <= closesAfter) revert DeadlineNotReached(roundId, closesAfter);
        uint256 count = round.pairCount;
        uint256 settledNow = 0;
        if (!_allSettled(roundId, count)) settledNow = _settleRemaining(roundId, round, pairs, count);
        round.status = RoundStatus.Finalized;
        emit RoundFinalized(roundId, msg.sender, settledNow);
    }

    // ------------------------------------------------------------------ views

    /// @notice The state of round `roundId` (status None if it does not exist).
    function getRound(uint256 roundId) external view returns (Round memory) {
        return _rounds[roundId];
    }

    /// @notice The state of pair `pairIndex` of round `roundId` (every pair of a finalized round is Settled).
    function pairState(uint256 roundId, uint256 pairIndex) external view returns (PairState) {
        if (uint8(_rounds[roundId].status) > uint8(RoundStatus.Open)) return PairState.Settled;
        return _storedState(roundId, pairIndex);
    }

    /// @notice How many pairs of round `roundId` are not settled yet (0 for a finalized or unknown
    ///         round). When it is 0, {settleRound} needs no pair list.
    function unsettledPairs(uint256 roundId) external view returns (uint256 pending) {
        Round storage round = _rounds[roundId];
        if (round.status != RoundStatus.Open) return 0;
        uint256 count = round.pairCount;
        for (uint256 i = 0; i < count; ++i) {
            if (_storedState(roundId, i) != PairState.Settled) pending += 1;
        }
    }

    /// @notice Repeats of the directed pair (teacher, student) in its current credit window.
    function pairHistory(address teacher, address student)
        external
        view
        returns (uint256 windowStartRound, uint256 repeats)
    {
        PairHistory memory h = _history[teacher][student];
        return (h.windowStartRound, h.repeats);
    }

    /// @notice The id of the open round, or 0 when none is open.
    function openRoundId() public view returns (uint256) {
        uint256 last = nextRoundId - 1;
        return _rounds[last].status != RoundStatus.Open ? 0 : last;
    }

    /// @notice The Merkle leaf of pair `pairIndex` (teacher -> student) of round `roundId`.
    function pairLeaf(uint256 roundId, uint256 pairIndex, address teacher, address student)
        public
        pure
        returns (bytes32 leaf)
    {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, roundId)
            mstore(add(p, 0x20), pairIndex)
            mstore(add(p, 0x40), teacher)
            mstore(add(p, 0x60), student)
            mstore(0x00, keccak256(p, 0x80))
            leaf := keccak256(0x00, 0x20)
        }
    }

    // ------------------------------------------------------------------ internal

    function _checkDeadlines(MarketParameters memory p, uint256 publishDeadline, uint256 reportDeadline)
        internal
        view
    {
        uint256 earliest = block.number + p.minRoundBlocks;
        uint256 latest = block.number + p.maxRoundBlocks;
        if (publishDeadline < earliest || publishDeadline > latest) {
            revert DeadlineOutOfRange(publishDeadline, earliest, latest);
        }
        earliest = publishDeadline + p.minReportWindowBlocks;
        latest = publishDeadline + p.maxRoundBlocks;
        if (reportDeadline < earliest || reportDeadline > latest) {
            revert DeadlineOutOfRange(reportDeadline, earliest, latest);
        }
    }

    function _pairAt(bytes calldata pairs, uint256 i) internal pure returns (address teacher, address student) {
        assembly ("memory-safe") {
            let at := add(pairs.offset, mul(i, 40))
            teacher := shr(96, calldataload(at))
            student := shr(96, calldataload(add(at, 20)))
        }
    }

    /// @dev Increment and return a per-round transient counter of `member` under `tag`.
    function _tincrement(uint256 roundId, uint256 tag, address member) internal returns (uint256 value) {
        assembly ("memory-safe") {
            mstore(0x00, or(tag, member))
            mstore(0x20, roundId)
            let slot := keccak256(0x00, 0x40)
            value := add(tload(slot), 1)
            tstore(slot, value)
        }
    }

    /// @dev The Merkle root of `leaves` (overwritten): neighbours hashed pairwise, odd last node carried up.
    function _rootInPlace(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 half = n >> 1;
            for (uint256 j = 0; j < half; ++j) {
                leaves[j] = Hashes.commutativeKeccak256(leaves[2 * j], leaves[2 * j + 1]);
            }
            if (n & 1 == 1) {
                leaves[half] = leaves[n - 1];
                n = half + 1;
            } else {
                n = half;
            }
        }
        return leaves[0];
    }

    function _requireOpen(uint256 roundId) internal view returns (Round storage round) {
        round = _rounds[roundId];
        if (round.status != RoundStatus.Open) revert RoundNotOpen(roundId);
    }

    function _requireMember(
        Round storage round,
        uint256 roundId,
        uint256 pairIndex,
        address teacher,
        address student,
        bytes32[] calldata proof
    ) internal view {
        if (
            pairIndex >= round.pairCount
                || !MerkleProof.verifyCalldata(proof, round.pairsRoot, pairLeaf(roundId, pairIndex, teacher, student))
        ) revert NotInRound(roundId, pairIndex, teacher, student);
    }

    function _storedState(uint256 roundId, uint256 pairIndex) internal view returns (PairState) {
        return PairState((_pairStates[roundId][pairIndex >> 7] >> ((pairIndex & 127) * 2)) & 3);
    }

    function _requireState(uint256 roundId, uint256 pairIndex, PairState expected) internal view {
        PairState state = _storedState(roundId, pairIndex);
        if (state != expected) revert WrongPairState(roundId, pairIndex, state);
    }

    function _setState(uint256 roundId, uint256 pairIndex, PairState state) internal {
        uint256 shift = (pairIndex & 127) * 2;
        uint256 word = _pairStates[roundId][pairIndex >> 7];
        _pairStates[roundId][pairIndex >> 7] = (word & ~(uint256(3) << shift)) | (uint256(state) << shift);
    }

    function _requirePairable(address organizationAddress, uint256 minStake) internal view {
        OrgState storage org = _requireActive(organizationAddress);
        uint256 stake = org.stake;
        if (stake < minStake) revert StakeBelowMinimum(organizationAddress, stake, minStake);
    }

    function _terms(uint256 roundId, Round storage round) internal view returns (Terms memory) {
        return Terms({
            roundId: roundId,
            fee: round.exchangeFee,
            bond: round.disputeBond,
            slashBps: _parameters.slashBps,
            weightBps: _parameters.reputationWeightBps
        });
    }

    /// @dev Credits for `gain` from `teacher` to `student` in `roundId`: the positive gain halved for
    ///      each earlier report of this directed pair in the current window of `creditWindowRounds`
    ///      rounds. Every report counts as a repeat, whatever its gain, so that a colluding and an
    ///      honest pair decay alike. Bound: credits of one directed pair per window < 2 * WAD.
    function _decayedCredits(uint256 roundId, address teacher, address student, int256 gain)
        internal
        returns (uint256 credits)
    {
        PairHistory memory h = _history[teacher][student];
        if (h.repeats == 0 || roundId >= uint256(h.windowStartRound) + _parameters.creditWindowRounds) {
            // forge-lint: disable-next-line(unsafe-typecast) round ids stay far below 2**32
            h.windowStartRound = uint32(roundId);
            h.repeats = 0;
        }
        // forge-lint: disable-next-line(unsafe-typecast) gain > 0 in this branch
        if (gain > 0 && h.repeats < 64) credits = uint256(gain) >> h.repeats;
        h.repeats += 1;
        _history[teacher][student] = h;
    }

    /// @dev Move `org`'s reputation toward `signal` (0 or WAD) with weight `weightBps`; returns it.
    function _moveReputation(OrgState storage org, uint256 signal, uint256 weightBps) internal returns (uint256) {
        uint256 updated = (uint256(org.reputation) * (10_000 - weightBps) + signal * weightBps) / 10_000;
        // forge-lint: disable-next-line(unsafe-typecast) a convex combination of values <= WAD < 2**64
        org.reputation = uint64(updated);
        return updated;
    }

    /// @dev Whether every one of the `count` pairs of `roundId` is Settled (both bits of each set).
    function _allSettled(uint256 roundId, uint256 count) internal view returns (bool) {
        uint256 words = (count + 127) >> 7;
        for (uint256 w = 0; w < words; ++w) {
            uint256 inWord = w + 1 < words ? 128 : count - (w << 7);
            uint256 full = inWord == 128 ? type(uint256).max : (uint256(1) << (inWord * 2)) - 1;
            if (_pairStates[roundId][w] != full) return false;
        }
        return true;
    }

    /// @dev Settle every unsettled pair of `roundId` after checking `pairs` against its root.
    ///      Escrow and bond releases are summed and written once.
    function _settleRemaining(uint256 roundId, Round storage round, bytes calldata pairs, uint256 count)
        internal
        returns (uint256 settledNow)
    {
        if (pairs.length != count * PAIR_BYTES) revert PairsMismatch(roundId);
        bytes32[] memory leaves = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            (address teacher, address student) = _pairAt(pairs, i);
            leaves[i] = pairLeaf(roundId, i, teacher, student);
        }
        if (_rootInPlace(leaves) != round.pairsRoot) revert PairsMismatch(roundId);

        Terms memory terms = _terms(roundId, round);
        uint256 feesReleased = 0;
        uint256 bondsReleased = 0;
        uint256 word = 0;
        for (uint256 i = 0; i < count; ++i) {
            if (i & 127 == 0) word = _pairStates[roundId][i >> 7];
            PairState state = PairState((word >> ((i & 127) * 2)) & 3);
            if (state == PairState.Settled) continue;
            settledNow += 1;
            (address teacher, address student) = _pairAt(pairs, i);
            if (state == PairState.Assigned) {
                _settleNoBundle(terms, i, teacher, student);
            } else if (state == PairState.Published) {
                feesReleased += terms.fee;
                _settleNoReport(terms, i, teacher, student);
            } else {
                feesReleased += terms.fee;
                bondsReleased += terms.bond;
                _settleDisputed(terms, i, teacher, student, Outcome.Unresolved, "");
            }
        }
        if (feesReleased != 0) _escrowedFees -= feesReleased;
        if (bondsReleased != 0) _heldBonds -= bondsReleased;
    }

    /// @dev `slashBps` of `offender`'s stake, taken from it (the caller credits the beneficiary).
    function _slash(OrgState storage offender, uint256 slashBps) internal returns (uint256 amount) {
        amount = (uint256(offender.stake) * slashBps) / 10_000;
        // forge-lint: disable-next-line(unsafe-typecast) amount <= stake < 2**96
        offender.stake -= uint96(amount);
    }

    /// @dev No bundle by the publish deadline: the teacher loses `slashBps` of its stake to the student.
    function _settleNoBundle(Terms memory terms, uint256 pairIndex, address teacher, address student) internal {
        OrgState storage teacherOrg = _orgs[teacher];
        uint256 slashed = _slash(teacherOrg, terms.slashBps);
        _credit(student, slashed);
        uint256 teacherReputation = _moveReputation(teacherOrg, 0, terms.weightBps);
        emit PairSettled(
            terms.roundId,
            teacher,
            student,
            pairIndex,
            Outcome.NoBundle,
            teacher,
            slashed,
            teacherReputation,
            _orgs[student].reputation,
            ""
        );
    }

    /// @dev A bundle but neither report nor dispute by the report deadline: the fee goes to the
    ///      teacher, and the student loses `slashBps` of its stake to it. The caller releases the escrow.
    function _settleNoReport(Terms memory terms, uint256 pairIndex, address teacher, address student) internal {
        OrgState storage studentOrg = _orgs[student];
        uint256 slashed = _slash(studentOrg, terms.slashBps);
        _credit(teacher, terms.fee + slashed);
        uint256 teacherReputation = _moveReputation(_orgs[teacher], WAD, terms.weightBps);
        uint256 studentReputation = _moveReputation(studentOrg, 0, terms.weightBps);
        emit PairSettled(
            terms.roundId,
            teacher,
            student,
            pairIndex,
            Outcome.NoReport,
            student,
            slashed,
            teacherReputation,
            studentReputation,
            ""
        );
    }

    /// @dev A disputed pair: by verdict (Defective, Unfounded) or without one (Unresolved). The
    ///      caller releases the fee and the bond from escrow.
    function _settleDisputed(
        Terms memory terms,
        uint256 pairIndex,
        address teacher,
        address student,
        Outcome outcome,
        bytes memory verdictCid
    ) internal {
        OrgState storage teacherOrg = _orgs[teacher];
        OrgState storage studentOrg = _orgs[student];
        uint256 slashed = 0;
        address offender = address(0);
        uint256 teacherReputation = teacherOrg.reputation;
        uint256 studentReputation = studentOrg.reputation;
        if (outcome == Outcome.Unfounded) {
            offender = student;
            _credit(teacher, terms.fee + terms.bond);
            teacherReputation = _moveReputation(teacherOrg, WAD, terms.weightBps);
            studentReputation = _moveReputation(studentOrg, 0, terms.weightBps);
        } else {
            // forge-lint: disable-next-line(unsafe-typecast) fee + bond <= minStake < 2**96
            studentOrg.stake += uint96(terms.fee + terms.bond);
            if (outcome == Outcome.Defective) {
                offender = teacher;
                slashed = _slash(teacherOrg, terms.slashBps);
                _credit(student, slashed);
                teacherReputation = _moveReputation(teacherOrg, 0, terms.weightBps);
                studentReputation = _moveReputation(studentOrg, WAD, terms.weightBps);
            }
        }
        emit PairSettled(
            terms.roundId,
            teacher,
            student,
            pairIndex,
            outcome,
            offender,
            slashed,
            teacherReputation,
            studentReputation,
            verdictCid
        );
    }

    function _roundHolding(uint256 requestedAtBlock) internal view override returns (uint256) {
        uint256 roundId = openRoundId();
        if (roundId == 0) return 0;
        return _rounds[roundId].openedAtBlock <= requestedAtBlock ? roundId : 0;
    }

    function _requireNoOpenRound() internal view override {
        uint256 roundId = openRoundId();
        if (roundId != 0) revert RoundStillOpen(roundId);
    }
}
