// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OrganizationRegistry} from "./OrganizationRegistry.sol";

/// @title KnexaMarket
/// @notice The knexa marketplace: organizations register with a stake (see {OrganizationRegistry});
///         each round the matchmaker commits its pairing decision (directed pairs teacher -> student);
///         teachers publish the CID of a knowledge bundle for their student; students report the
///         Pass-at-1 gain they measured; after the deadline anyone finalizes the round, which pays fees,
///         credits teachers, moves reputations and slashes no-shows. Every step is an event, so the
///         matchmaker's decisions and rewards can be replayed from the public record.
/// @dev One round is open at a time; rounds are numbered 1, 2, 3, ... without gaps.
contract KnexaMarket is OrganizationRegistry {
    /// @notice Role allowed to open rounds.
    bytes32 public constant MATCHMAKER_ROLE = keccak256("MATCHMAKER_ROLE");
    /// @notice Largest magnitude of a reported gain (a Pass-at-1 difference lies in [-1, 1]).
    // forge-lint: disable-next-line(unsafe-typecast) WAD (1e18) is far below type(int256).max
    int256 public constant MAX_ABS_GAIN = int256(WAD);

    /// @notice Life cycle of a round.
    enum RoundStatus {
        None,
        Open,
        Finalized
    }

    /// @notice Why a stake was slashed.
    enum SlashReason {
        NoBundle,
        NoReport
    }

    /// @notice On-chain state of one round.
    /// @param status life-cycle state
    /// @param openedAtBlock block the round was opened in
    /// @param deadlineBlock last block in which bundles may be published and gains reported
    /// @param pairCount number of directed pairs
    /// @param decisionDigest keccak256 of the decision record's CID bytes
    /// @param policyDigest digest of the matchmaker's declared policy parameters
    /// @param exchangeFee fee per pair escrowed at opening (the terms the round settles under)
    struct Round {
        RoundStatus status;
        uint64 openedAtBlock;
        uint64 deadlineBlock;
        uint16 pairCount;
        bytes32 decisionDigest;
        bytes32 policyDigest;
        uint256 exchangeFee;
    }

    /// @notice One directed pair of a round.
    /// @param teacher organization that sends a knowledge bundle
    /// @param bundlePublished whether the teacher published its bundle before the deadline
    /// @param gainReported whether the student reported its gain before the deadline
    /// @param student organization that distils the bundle and reports its gain
    /// @param gain reported Pass-at-1 gain, WAD-scaled, in [-1e18, 1e18]
    /// @param bundleDigest keccak256 of the bundle's CID bytes
    /// @param adapterDigest keccak256 of the CID bytes of the student's post-round adapter commitment
    struct Pair {
        address teacher;
        bool bundlePublished;
        bool gainReported;
        address student;
        int96 gain;
        bytes32 bundleDigest;
        bytes32 adapterDigest;
    }

    /// @dev The terms one round settles under, passed to `_settlePair` as one value.
    struct Settlement {
        uint256 roundId;
        uint256 fee;
        uint256 slashBps;
        uint256 weightBps;
    }

    uint256 public nextRoundId = 1;
    mapping(uint256 roundId => Round) internal _rounds;
    mapping(uint256 roundId => mapping(uint256 pairIndex => Pair)) internal _pairs;
    /// @dev An organization's part in a round, packed in one slot so that an organization that is
    ///      both teacher and student (the common case) costs one fresh storage write, not two:
    ///      bits 0-127 hold its pair index + 1 as a student (0: not a student), bits 128-255 the
    ///      number of pairs it teaches.
    mapping(uint256 roundId => mapping(address organization => uint256)) internal _participation;
    uint256 private constant _STUDENT_MASK = type(uint128).max;
    uint256 private constant _ONE_TEACHING = 1 << 128;

    /// @notice The matchmaker opened round `roundId` with the decision record at `decisionCid`.
    event RoundOpened(
        uint256 indexed roundId, bytes32 indexed policyDigest, bytes decisionCid, uint256 deadlineBlock, uint256 pairCount
    );
    /// @notice `teacher` was paired with `student` in round `roundId`.
    event PairAssigned(uint256 indexed roundId, address indexed teacher, address indexed student, uint256 pairIndex);
    /// @notice `teacher` published the CID of the bundle for `student`.
    event BundlePublished(uint256 indexed roundId, address indexed teacher, address indexed student, bytes bundleCid);
    /// @notice `student` reported the gain it measured after distilling `teacher`'s bundle.
    event GainReported(
        uint256 indexed roundId, address indexed teacher, address indexed student, int256 gain, bytes adapterCid
    );
    /// @notice Round `roundId` was settled by `finalizer`.
    event RoundFinalized(uint256 indexed roundId, address indexed finalizer, uint256 delivered, uint256 reported);
    /// @notice `teacher` earned `fee` wei and `credits` (WAD) for its bundle to `student`.
    event RewardPaid(
        uint256 indexed roundId, address indexed teacher, address indexed student, uint256 fee, uint256 credits
    );
    /// @notice The escrowed fee went back to `student`'s stake because its teacher delivered nothing.
    event FeeRefunded(uint256 indexed roundId, address indexed student, uint256 fee);
    /// @notice `organization`'s reputation moved from `oldReputation` to `newReputation` (WAD).
    event ReputationUpdated(
        address indexed organization, uint256 indexed roundId, uint256 oldReputation, uint256 newReputation
    );
    /// @notice `offender` lost `amount` wei of stake to `beneficiary` for `reason`.
    event Slashed(
        uint256 indexed roundId,
        address indexed offender,
        address indexed beneficiary,
        uint256 amount,
        SlashReason reason
    );

    /// @notice `given` is not the next round id `expected`.
    error UnexpectedRoundId(uint256 expected, uint256 given);
    /// @notice Round `roundId` is still open.
    error RoundStillOpen(uint256 roundId);
    /// @notice A round needs at least one pair.
    error NoPairs();
    /// @notice The teacher and student lists differ in length.
    error PairListsMismatch(uint256 teachers, uint256 students);
    /// @notice `count` pairs exceed the maximum `maximum`.
    error TooManyPairs(uint256 count, uint256 maximum);
    /// @notice `organization` was paired with itself.
    error SelfPair(address organization);
    /// @notice `student` appears as student twice in one round.
    error DuplicateStudent(address student);
    /// @notice `organization`'s stake `stake` is below the minimum `required`.
    error StakeBelowMinimum(address organization, uint256 stake, uint256 required);
    /// @notice The deadline `deadlineBlock` is outside [`earliest`, `latest`].
    error DeadlineOutOfRange(uint256 deadlineBlock, uint256 earliest, uint256 latest);
    /// @notice Round `roundId` is not open.
    error RoundNotOpen(uint256 roundId);
    /// @notice `account` is not the student of any pair of round `roundId`.
    error NotAssignedStudent(uint256 roundId, address account);
    /// @notice `account` is not the teacher of `student` in round `roundId`.
    error NotAssignedTeacher(uint256 roundId, address account, address student);
    /// @notice The deadline `deadlineBlock` of the round has passed.
    error DeadlinePassed(uint256 roundId, uint256 deadlineBlock);
    /// @notice The deadline `deadlineBlock` of the round has not passed yet.
    error DeadlineNotReached(uint256 roundId, uint256 deadlineBlock);
    /// @notice The bundle for `student` was already published.
    error BundleAlreadyPublished(uint256 roundId, address student);
    /// @notice No bundle was published for `student` yet.
    error BundleNotPublished(uint256 roundId, address student);
    /// @notice `student` already reported its gain.
    error GainAlreadyReported(uint256 roundId, address student);
    /// @notice `gain` lies outside [-1e18, 1e18].
    error GainOutOfRange(int256 gain);

    /// @param admin account holding DEFAULT_ADMIN_ROLE (grants MATCHMAKER_ROLE, sets parameters)
    /// @param matchmaker account holding MATCHMAKER_ROLE from the start
    /// @param initialParameters market parameters
    constructor(address admin, address matchmaker, MarketParameters memory initialParameters)
        OrganizationRegistry(admin, initialParameters)
    {
        _grantRole(MATCHMAKER_ROLE, matchmaker);
    }

    // ------------------------------------------------------------------ rounds

    /// @notice Commit the matchmaker's decision for round `roundId` and open it.
    /// @dev Escrows one exchange fee from each student's stake. Both members of every pair must be
    ///      active and hold at least `minStake`; a student appears at most once; a teacher may teach
    ///      several students (the matchmaker's capacity policy).
    /// @param roundId must equal `nextRoundId`, which makes replays and out-of-order calls fail
    /// @param decisionCid CID of the decision record (contexts, scores, policy, state digest)
    /// @param policyDigest digest of the matchmaker's declared policy parameters
    /// @param teachers teacher of each pair
    /// @param students student of each pair
    /// @param deadlineBlock last block for bundles and reports
    function openRound(
        uint256 roundId,
        bytes calldata decisionCid,
        bytes32 policyDigest,
        address[] calldata teachers,
        address[] calldata students,
        uint64 deadlineBlock
    ) external onlyRole(MATCHMAKER_ROLE) {
        if (roundId != nextRoundId) revert UnexpectedRoundId(nextRoundId, roundId);
        _requireNoOpenRound();
        _requireValidCid(decisionCid);
        uint256 count = teachers.length;
        if (count == 0) revert NoPairs();
        if (count != students.length) revert PairListsMismatch(count, students.length);
        MarketParameters memory p = _parameters;
        if (count > p.maxPairsPerRound) revert TooManyPairs(count, p.maxPairsPerRound);
        uint256 earliest = block.number + p.minRoundBlocks;
        uint256 latest = block.number + p.maxRoundBlocks;
        if (deadlineBlock < earliest || deadlineBlock > latest) {
            revert DeadlineOutOfRange(deadlineBlock, earliest, latest);
        }

        nextRoundId = roundId + 1;
        Round storage round = _rounds[roundId];
        round.status = RoundStatus.Open;
        round.openedAtBlock = uint64(block.number);
        round.deadlineBlock = deadlineBlock;
        // forge-lint: disable-next-line(unsafe-typecast) count <= maxPairsPerRound <= MAX_PAIRS_LIMIT (256)
        round.pairCount = uint16(count);
        round.decisionDigest = keccak256(decisionCid);
        round.policyDigest = policyDigest;
        round.exchangeFee = p.exchangeFee;
        emit RoundOpened(roundId, policyDigest, decisionCid, deadlineBlock, count);

        for (uint256 i = 0; i < count; ++i) {
            address teacher = teachers[i];
            address student = students[i];
            if (teacher == student) revert SelfPair(teacher);
            // A teacher that already paid its fee as a student of this round is judged by its
            // stake before that fee, so the order of the pairs never matters.
            uint256 paidAsStudent = _studentSlot(roundId, teacher) != 0 ? p.exchangeFee : 0;
            _requirePairable(teacher, p.minStake, paidAsStudent);
            Organization storage studentOrg = _requirePairable(student, p.minStake, 0);
            if (_studentSlot(roundId, student) != 0) revert DuplicateStudent(student);
            _participation[roundId][student] |= i + 1;
            _participation[roundId][teacher] += _ONE_TEACHING;
            studentOrg.stake -= p.exchangeFee;
            _pairs[roundId][i] = Pair({
                teacher: teacher,
                bundlePublished: false,
                gainReported: false,
                student: student,
                gain: 0,
                bundleDigest: bytes32(0),
                adapterDigest: bytes32(0)
            });
            emit PairAssigned(roundId, teacher, student, i);
        }
        _escrowedFees += p.exchangeFee * count;
    }

    /// @notice As the assigned teacher of `student` in round `roundId`, publish the bundle's CID.
    /// @param roundId an open round whose deadline has not passed
    /// @param student the student of the caller's pair
    /// @param bundleCid CID of the sealed knowledge bundle
    function publishBundle(uint256 roundId, address student, bytes calldata bundleCid) external {
        _requireOpenBeforeDeadline(roundId);
        uint256 slot = _studentSlot(roundId, student);
        if (slot == 0) revert NotAssignedTeacher(roundId, msg.sender, student);
        Pair storage pair = _pairs[roundId][slot - 1];
        if (pair.teacher != msg.sender) revert NotAssignedTeacher(roundId, msg.sender, student);
        if (pair.bundlePublished) revert BundleAlreadyPublished(roundId, student);
        _requireValidCid(bundleCid);
        pair.bundlePublished = true;
        pair.bundleDigest = keccak256(bundleCid);
        emit BundlePublished(roundId, msg.sender, student, bundleCid);
    }

    /// @notice As the assigned student of round `roundId`, report the Pass-at-1 gain measured after
    ///         distilling the bundle of `teacher`, and commit to the resulting adapter.
    /// @param roundId an open round whose deadline has not passed
    /// @param teacher the caller's teacher in that round (checked, guards against mix-ups)
    /// @param gain measured gain, WAD-scaled, in [-1e18, 1e18]
    /// @param adapterCid CID of the student's post-round adapter commitment
    function reportGain(uint256 roundId, address teacher, int256 gain, bytes calldata adapterCid) external {
        _requireOpenBeforeDeadline(roundId);
        uint256 slot = _studentSlot(roundId, msg.sender);
        if (slot == 0) revert NotAssignedStudent(roundId, msg.sender);
        Pair storage pair = _pairs[roundId][slot - 1];
        if (pair.teacher != teacher) revert NotAssignedTeacher(roundId, teacher, msg.sender);
        if (!pair.bundlePublished) revert BundleNotPublished(roundId, msg.sender);
        if (pair.gainReported) revert GainAlreadyReported(roundId, msg.sender);
        if (gain > MAX_ABS_GAIN || gain < -MAX_ABS_GAIN) revert GainOutOfRange(gain);
        _requireValidCid(adapterCid);
        pair.gainReported = true;
        // forge-lint: disable-next-line(unsafe-typecast) |gain| <= 1e18 < 2**95 was checked above
        pair.gain = int96(gain);
        pair.adapterDigest = keccak256(adapterCid);
        emit GainReported(roundId, teacher, msg.sender, gain, adapterCid);
    }

    /// @notice Settle round `roundId` after its deadline. Anyone may call it.
    /// @dev Per pair: a delivering teacher receives the escrowed fee (withdrawable) and credits
    ///      for a positive gain; a teacher that delivered nothing loses `slashBps` of its stake to the
    ///      student, whose fee is refunded to its stake; a student that got a bundle but reported
    ///      nothing loses `slashBps` of its stake to the teacher. Reputation signals (WAD) enter an
    ///      EMA with weight `reputationWeightBps`: teacher (1 + gain) / 2 when delivered and reported,
    ///      1/2 when delivered but unreported, 0 when not delivered; student 1 when it reported, 0 when
    ///      it got a bundle and did not report, unchanged when it got no bundle.
    /// @param roundId an open round whose deadline block has passed
    function finalizeRound(uint256 roundId) external {
        Round storage round = _rounds[roundId];
        if (round.status != RoundStatus.Open) revert RoundNotOpen(roundId);
        if (block.number <= round.deadlineBlock) revert DeadlineNotReached(roundId, round.deadlineBlock);
        round.status = RoundStatus.Finalized;

        uint256 count = round.pairCount;
        _escrowedFees -= round.exchangeFee * count;
        Settlement memory terms = Settlement({
            roundId: roundId,
            fee: round.exchangeFee,
            slashBps: _parameters.slashBps,
            weightBps: _parameters.reputationWeightBps
        });
        uint256 delivered;
        uint256 reported;
        for (uint256 i = 0; i < count; ++i) {
            (bool wasDelivered, bool wasReported) = _settlePair(terms, _pairs[roundId][i]);
            if (wasDelivered) delivered += 1;
            if (wasReported) reported += 1;
        }
        emit RoundFinalized(roundId, msg.sender, delivered, reported);
    }

    // ------------------------------------------------------------------ views

    /// @notice The state of round `roundId` (status None if it does not exist).
    function getRound(uint256 roundId) external view returns (Round memory) {
        return _rounds[roundId];
    }

    /// @notice Pair `pairIndex` of round `roundId`.
    function getPair(uint256 roundId, uint256 pairIndex) external view returns (Pair memory) {
        return _pairs[roundId][pairIndex];
    }

    /// @notice All pairs of round `roundId`, in pair-index order.
    function getPairs(uint256 roundId) external view returns (Pair[] memory pairs) {
        uint256 count = _rounds[roundId].pairCount;
        pairs = new Pair[](count);
        for (uint256 i = 0; i < count; ++i) {
            pairs[i] = _pairs[roundId][i];
        }
    }

    /// @notice The id of the open round, or 0 when none is open.
    function openRoundId() public view returns (uint256) {
        uint256 last = nextRoundId - 1;
        return _rounds[last].status == RoundStatus.Open ? last : 0;
    }

    // ------------------------------------------------------------------ internal

    function _openRoundOf(address organizationAddress) internal view override returns (uint256) {
        uint256 roundId = openRoundId();
        if (roundId == 0) return 0;
        return _participation[roundId][organizationAddress] != 0 ? roundId : 0;
    }

    function _studentSlot(uint256 roundId, address organizationAddress) internal view returns (uint256) {
        return _participation[roundId][organizationAddress] & _STUDENT_MASK;
    }

    function _requireNoOpenRound() internal view override {
        uint256 roundId = openRoundId();
        if (roundId != 0) revert RoundStillOpen(roundId);
    }

    function _requireOpenBeforeDeadline(uint256 roundId) internal view returns (Round storage round) {
        round = _rounds[roundId];
        if (round.status != RoundStatus.Open) revert RoundNotOpen(roundId);
        if (block.number > round.deadlineBlock) revert DeadlinePassed(roundId, round.deadlineBlock);
    }

    function _requirePairable(address organizationAddress, uint256 minStake, uint256 feePaidThisRound)
        internal
        view
        returns (Organization storage org)
    {
        org = _requireActive(organizationAddress);
        uint256 stake = org.stake + feePaidThisRound;
        if (stake < minStake) revert StakeBelowMinimum(organizationAddress, stake, minStake);
    }

    function _settlePair(Settlement memory terms, Pair storage pair)
        internal
        returns (bool delivered, bool reported)
    {
        address teacher = pair.teacher;
        address student = pair.student;
        Organization storage teacherOrg = _organizations[teacher];
        Organization storage studentOrg = _organizations[student];
        delivered = pair.bundlePublished;
        reported = pair.gainReported;
        if (!delivered) {
            studentOrg.stake += terms.fee;
            emit FeeRefunded(terms.roundId, student, terms.fee);
            _slash(terms, teacher, teacherOrg, student, SlashReason.NoBundle);
            _moveReputation(terms, teacher, teacherOrg, 0);
            return (false, false);
        }
        uint256 credits;
        uint256 teacherSignal = WAD / 2;
        if (reported) {
            int256 gain = pair.gain;
            // forge-lint: disable-next-line(unsafe-typecast) gain > 0 in this branch
            if (gain > 0) credits = uint256(gain);
            // forge-lint: disable-next-item(unsafe-typecast) -1e18 <= gain, so WAD + gain >= 0
            teacherSignal = uint256(int256(WAD) + gain) / 2;
            _moveReputation(terms, student, studentOrg, WAD);
        } else {
            _slash(terms, student, studentOrg, teacher, SlashReason.NoReport);
            _moveReputation(terms, student, studentOrg, 0);
        }
        pendingWithdrawal[teacher] += terms.fee;
        teacherOrg.credits += credits;
        emit RewardPaid(terms.roundId, teacher, student, terms.fee, credits);
        _moveReputation(terms, teacher, teacherOrg, teacherSignal);
    }

    function _slash(
        Settlement memory terms,
        address offender,
        Organization storage offenderOrg,
        address beneficiary,
        SlashReason reason
    ) internal {
        uint256 amount = (offenderOrg.stake * terms.slashBps) / 10_000;
        offenderOrg.stake -= amount;
        pendingWithdrawal[beneficiary] += amount;
        emit Slashed(terms.roundId, offender, beneficiary, amount, reason);
    }

    function _moveReputation(
        Settlement memory terms,
        address organizationAddress,
        Organization storage org,
        uint256 signal
    ) internal {
        uint256 old = org.reputation;
        uint256 updated = (old * (10_000 - terms.weightBps) + signal * terms.weightBps) / 10_000;
        org.reputation = updated;
        emit ReputationUpdated(organizationAddress, terms.roundId, old, updated);
    }
}
