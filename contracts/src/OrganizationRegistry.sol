// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title OrganizationRegistry
/// @notice Registration, stake, reputation, credits, exit and withdrawals of the organizations
///         of the knexa marketplace. The round logic lives in {KnexaMarket}, which inherits this.
/// @dev All value held by the contract is accounted in exactly one of four places: an
///      organization's `stake`, an organization's withdrawable balance (`pendingWithdrawal`), the
///      fee escrow of delivered but unsettled bundles (`_escrowedFees`), or the bonds of open
///      disputes (`_heldBonds`). Tests check that their sum always equals the contract's balance.
///      Only organizations are ever owed wei, so the withdrawable balance lives in the organization's
///      second storage word, next to its credits: that word is written non-zero at registration
///      (`registeredAtBlock`), so crediting a fee or a slash later costs a 2.9k update, never a 22.1k
///      fresh slot, and a report writes the teacher's fee and credits in one store.
///      Name, encryption key and profile CID live only in events: nothing on chain reads them.
abstract contract OrganizationRegistry is AccessControl, ReentrancyGuard {
    /// @notice Fixed-point scale of reputation, credits and gains (1.0 == 1e18).
    uint256 public constant WAD = 1e18;
    /// @notice Reputation of a newly registered organization: trust is earned, a fresh address buys none.
    uint256 public constant INITIAL_REPUTATION = 0;
    /// @notice Longest display name in bytes.
    uint256 public constant MAX_NAME_BYTES = 64;
    /// @notice Longest CID in bytes (a CIDv1 with a 64-byte multihash fits comfortably).
    uint256 public constant MAX_CID_BYTES = 128;
    /// @notice Hard upper bound on `maxPairsPerRound`: a full round opens and settles in one block.
    uint16 public constant MAX_PAIRS_LIMIT = 2048;

    /// @notice Life cycle of an organization. `Exiting` organizations cannot be paired.
    enum OrganizationStatus {
        None,
        Active,
        Exiting,
        Exited
    }

    /// @dev The first storage word of one organization: stake, reputation and life cycle (what
    ///      pairing and slashing read and write).
    struct OrgState {
        uint96 stake;
        uint64 reputation;
        OrganizationStatus status;
        uint40 exitRequestedAtBlock;
        uint40 exitAvailableAtBlock;
    }

    /// @dev The second storage word of one organization: what it is owed and what it earned.
    ///      `registeredAtBlock` (>= 1 on any chain past genesis) keeps the word non-zero for good.
    ///      uint96 cannot overflow: a withdrawable balance never exceeds the contract's balance,
    ///      and all the ether in existence is far below 2**96 wei.
    struct OrgAccount {
        uint96 withdrawable;
        uint96 credits;
        uint40 registeredAtBlock;
    }

    /// @notice The on-chain state of one organization, as {organization} returns it.
    /// @param status life-cycle state
    /// @param registeredAtBlock block of registration
    /// @param exitRequestedAtBlock block of the exit request (0: none)
    /// @param exitAvailableAtBlock first block at which an exiting organization may complete its exit
    /// @param stake slashable stake in wei (also pays exchange fees and dispute bonds as a student)
    /// @param reputation EMA of punctual delivery (teacher) and reporting (student), WAD in [0, 1]
    /// @param credits pair-decayed positive gains this organization caused as a teacher, WAD
    struct Organization {
        OrganizationStatus status;
        uint64 registeredAtBlock;
        uint64 exitRequestedAtBlock;
        uint64 exitAvailableAtBlock;
        uint256 stake;
        uint256 reputation;
        uint256 credits;
    }

    /// @notice Market parameters; changed only by the admin and only while no round is open.
    /// @param minStake smallest stake to register and to be paired, in wei
    /// @param exchangeFee wei a student pays for one bundle, escrowed from its stake when the bundle is published
    /// @param exitCooldownBlocks blocks between an exit request and the release of the stake
    /// @param minRoundBlocks shortest allowed distance from opening to the publish deadline
    /// @param disputeBond wei a disputing student puts up; lost to the teacher if the dispute is unfounded
    /// @param maxRoundBlocks longest allowed distance from opening to the publish deadline, and from
    ///        the publish deadline to the report deadline
    /// @param minReportWindowBlocks shortest allowed distance from the publish to the report deadline
    /// @param verdictWindowBlocks blocks after the report deadline in which the arbiter may rule
    /// @param creditWindowRounds rounds over which repeats of one directed pair decay its credits
    /// @param slashBps share of stake (basis points) a no-show or a proven-defective teacher loses
    /// @param reputationWeightBps weight (basis points) of the newest observation in the reputation EMA
    /// @param maxPairsPerRound bound on the pairs of one round
    /// @param teacherCapacity most students one teacher may have in one round
    struct MarketParameters {
        uint96 minStake;
        uint96 exchangeFee;
        uint32 exitCooldownBlocks;
        uint32 minRoundBlocks;
        uint96 disputeBond;
        uint32 maxRoundBlocks;
        uint32 minReportWindowBlocks;
        uint32 verdictWindowBlocks;
        uint32 creditWindowRounds;
        uint16 slashBps;
        uint16 reputationWeightBps;
        uint16 maxPairsPerRound;
        uint16 teacherCapacity;
    }

    MarketParameters internal _parameters;
    mapping(address organization => OrgState) internal _orgs;
    mapping(address organization => OrgAccount) internal _accounts;
    address[] internal _organizationList;
    uint256 internal _escrowedFees;
    uint256 internal _heldBonds;

    /// @notice An organization registered with `stake` wei.
    event OrganizationRegistered(
        address indexed organization, string name, bytes profileCid, bytes encryptionPublicKey, uint256 stake
    );
    /// @notice An organization published a new profile document.
    event ProfileUpdated(address indexed organization, bytes profileCid);
    /// @notice An organization added stake.
    event StakeAdded(address indexed organization, uint256 amount, uint256 newStake);
    /// @notice An organization asked to leave; its stake is released at `availableAtBlock` (or, if it
    ///         takes part in the open round, once that round is settled, whichever is later).
    event ExitRequested(address indexed organization, uint256 availableAtBlock);
    /// @notice An organization left; `stakeReleased` wei became withdrawable.
    event OrganizationExited(address indexed organization, uint256 stakeReleased);
    /// @notice `amount` wei left the contract to `account`.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice The admin changed the market parameters.
    event ParametersUpdated(MarketParameters parameters);

    /// @notice `organization` is not registered (or has exited).
    error UnknownOrganization(address organization);
    /// @notice `organization` is already registered.
    error AlreadyRegistered(address organization);
    /// @notice `sent` wei is below the required stake `required`.
    error StakeTooLow(uint256 sent, uint256 required);
    /// @notice A stake above 2**96 wei does not fit the packed organization word.
    error StakeTooHigh(uint256 stake);
    /// @notice The display name is empty or longer than MAX_NAME_BYTES.
    error InvalidName();
    /// @notice A CID is empty or longer than MAX_CID_BYTES.
    error InvalidCid();
    /// @notice The encryption key is not a 33-byte compressed secp256k1 point.
    error InvalidPublicKey();
    /// @notice `organization` is not in the Active state.
    error OrganizationNotActive(address organization);
    /// @notice `organization` takes part in the open round `roundId`.
    error InOpenRound(address organization, uint256 roundId);
    /// @notice `organization` has not requested an exit.
    error ExitNotRequested(address organization);
    /// @notice The exit cooldown runs until `availableAtBlock`.
    error CooldownNotOver(uint256 availableAtBlock);
    /// @notice There is nothing to withdraw.
    error NothingToWithdraw();
    /// @notice Sending ether to `account` failed.
    error TransferFailed(address account);
    /// @notice A zero-value call where value is required.
    error ZeroAmount();
    /// @notice The proposed market parameters are inconsistent; `field` names the first bad one.
    error InvalidParameters(string field);

    constructor(address admin, MarketParameters memory initialParameters) {
        _validateParameters(initialParameters);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _parameters = initialParameters;
        emit ParametersUpdated(initialParameters);
    }

    // ------------------------------------------------------------------ registration

    /// @notice Register the caller as an organization, staking `msg.value` wei.
    /// @param name display name, 1 to MAX_NAME_BYTES bytes (event only)
    /// @param profileCid CID of the sanitised profile document on IPFS (event only)
    /// @param encryptionPublicKey 33-byte compressed secp256k1 key that bundles are encrypted to (event only)
    function register(string calldata name, bytes calldata profileCid, bytes calldata encryptionPublicKey)
        external
        payable
    {
        OrgState storage org = _orgs[msg.sender];
        if (org.status != OrganizationStatus.None) revert AlreadyRegistered(msg.sender);
        uint256 minStake = _parameters.minStake;
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        if (msg.value > type(uint96).max) revert StakeTooHigh(msg.value);
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > MAX_NAME_BYTES) revert InvalidName();
        _requireValidCid(profileCid);
        _requireValidPublicKey(encryptionPublicKey);

        // forge-lint: disable-next-item(unsafe-typecast) msg.value <= type(uint96).max was checked above
        _orgs[msg.sender] = OrgState({
            stake: uint96(msg.value),
            reputation: uint64(INITIAL_REPUTATION),
            status: OrganizationStatus.Active,
            exitRequestedAtBlock: 0,
            exitAvailableAtBlock: 0
        });
        // forge-lint: disable-next-line(unsafe-typecast) block numbers fit 40 bits for millennia
        _accounts[msg.sender] = OrgAccount({withdrawable: 0, credits: 0, registeredAtBlock: uint40(block.number)});
        _organizationList.push(msg.sender);
        emit OrganizationRegistered(msg.sender, name, profileCid, encryptionPublicKey, msg.value);
    }

    /// @notice Point the caller's profile at a new sanitised profile document.
    /// @param profileCid CID of the new profile document
    function updateProfile(bytes calldata profileCid) external {
        _requireActive(msg.sender);
        _requireValidCid(profileCid);
        emit ProfileUpdated(msg.sender, profileCid);
    }

    /// @notice Add `msg.value` wei to the caller's stake (e.g. after a slash or fees).
    function addStake() external payable {
        OrgState storage org = _requireActive(msg.sender);
        if (msg.value == 0) revert ZeroAmount();
        uint256 updated = uint256(org.stake) + msg.value;
        if (updated > type(uint96).max) revert StakeTooHigh(updated);
        // forge-lint: disable-next-line(unsafe-typecast) checked just above
        org.stake = uint96(updated);
        emit StakeAdded(msg.sender, msg.value, updated);
    }

    /// @notice Start leaving the market. Always possible for an active organization, also during a
    ///         round it takes part in: from now on it cannot be paired, and it completes its exit after
    ///         `exitCooldownBlocks` once no unsettled round holds it.
    function requestExit() external {
        OrgState storage org = _requireActive(msg.sender);
        uint256 availableAt = block.number + _parameters.exitCooldownBlocks;
        org.status = OrganizationStatus.Exiting;
        // forge-lint: disable-next-item(unsafe-typecast) block numbers fit 40 bits for millennia
        org.exitRequestedAtBlock = uint40(block.number);
        // forge-lint: disable-next-line(unsafe-typecast) as above
        org.exitAvailableAtBlock = uint40(availableAt);
        emit ExitRequested(msg.sender, availableAt);
    }

    /// @notice Finish leaving: the remaining stake becomes withdrawable with {withdraw}.
    function completeExit() external {
        OrgState storage org = _orgs[msg.sender];
        if (org.status != OrganizationStatus.Exiting) revert ExitNotRequested(msg.sender);
        uint256 availableAt = org.exitAvailableAtBlock;
        if (block.number < availableAt) revert CooldownNotOver(availableAt);
        uint256 holding = _roundHolding(org.exitRequestedAtBlock);
        if (holding != 0) revert InOpenRound(msg.sender, holding);
        uint256 released = org.stake;
        org.stake = 0;
        org.status = OrganizationStatus.Exited;
        _credit(msg.sender, released);
        emit OrganizationExited(msg.sender, released);
    }

    /// @notice Send the caller everything it is owed (fees earned, slashes received, released stake).
    function withdraw() external nonReentrant {
        OrgAccount storage account = _accounts[msg.sender];
        uint256 amount = account.withdrawable;
        if (amount == 0) revert NothingToWithdraw();
        account.withdrawable = 0;
        emit Withdrawn(msg.sender, amount);
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert TransferFailed(msg.sender);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Replace the market parameters. Only the admin, and only while no round is open,
    ///         so that an open round is always settled under the terms it was opened with.
    /// @param newParameters the new parameters
    function setParameters(MarketParameters calldata newParameters) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _validateParameters(newParameters);
        _requireNoOpenRound();
        _parameters = newParameters;
        emit ParametersUpdated(newParameters);
    }

    // ------------------------------------------------------------------ views

    /// @notice The current market parameters.
    function parameters() external view returns (MarketParameters memory) {
        return _parameters;
    }

    /// @notice The state of `organizationAddress` (status None if never registered).
    function organization(address organizationAddress) external view returns (Organization memory) {
        OrgState memory org = _orgs[organizationAddress];
        OrgAccount memory account = _accounts[organizationAddress];
        return Organization({
            status: org.status,
            registeredAtBlock: account.registeredAtBlock,
            exitRequestedAtBlock: org.exitRequestedAtBlock,
            exitAvailableAtBlock: org.exitAvailableAtBlock,
            stake: org.stake,
            reputation: org.reputation,
            credits: account.credits
        });
    }

    /// @notice Wei `account` may take out with {withdraw} (fees earned, slashes received, released stake).
    function pendingWithdrawal(address account) external view returns (uint256) {
        return _accounts[account].withdrawable;
    }

    /// @notice How many addresses have ever registered.
    function organizationCount() external view returns (uint256) {
        return _organizationList.length;
    }

    /// @notice Registered addresses in registration order, from `start`, at most `limit` of them.
    function organizationsPage(uint256 start, uint256 limit) external view returns (address[] memory page) {
        uint256 total = _organizationList.length;
        if (start >= total) return new address[](0);
        uint256 end = start + limit > total ? total : start + limit;
        page = new address[](end - start);
        for (uint256 i = start; i < end; ++i) {
            page[i - start] = _organizationList[i];
        }
    }

    /// @notice Wei held in escrow for delivered, unsettled bundles.
    function escrowedFees() external view returns (uint256) {
        return _escrowedFees;
    }

    /// @notice Wei held as bonds of open disputes.
    function heldBonds() external view returns (uint256) {
        return _heldBonds;
    }

    // ------------------------------------------------------------------ internal

    /// @dev The id of the open round that may hold an organization whose exit was requested at
    ///      `requestedAtBlock`, or 0. A round opened after the request cannot hold it (openRound
    ///      accepts active organizations only).
    function _roundHolding(uint256 requestedAtBlock) internal view virtual returns (uint256);

    /// @dev Reverts if a round is open.
    function _requireNoOpenRound() internal view virtual;

    function _requireActive(address organizationAddress) internal view returns (OrgState storage org) {
        org = _orgs[organizationAddress];
        OrganizationStatus status = org.status;
        if (status == OrganizationStatus.None || status == OrganizationStatus.Exited) {
            revert UnknownOrganization(organizationAddress);
        }
        if (status != OrganizationStatus.Active) revert OrganizationNotActive(organizationAddress);
    }

    /// @dev Make `amount` wei withdrawable by the organization `beneficiary`.
    function _credit(address beneficiary, uint256 amount) internal {
        // forge-lint: disable-next-line(unsafe-typecast) amount <= the contract's balance < 2**96
        _accounts[beneficiary].withdrawable += uint96(amount);
    }

    function _requireValidCid(bytes calldata cid) internal pure {
        if (cid.length == 0 || cid.length > MAX_CID_BYTES) revert InvalidCid();
    }

    function _requireValidPublicKey(bytes calldata key) internal pure {
        if (key.length != 33 || (key[0] != 0x02 && key[0] != 0x03)) revert InvalidPublicKey();
    }

    function _validateParameters(MarketParameters memory p) internal pure {
        if (p.slashBps > 10_000) revert InvalidParameters("slashBps");
        if (p.reputationWeightBps == 0 || p.reputationWeightBps > 10_000) {
            revert InvalidParameters("reputationWeightBps");
        }
        if (p.maxPairsPerRound == 0 || p.maxPairsPerRound > MAX_PAIRS_LIMIT) {
            revert InvalidParameters("maxPairsPerRound");
        }
        if (p.teacherCapacity == 0) revert InvalidParameters("teacherCapacity");
        if (p.minRoundBlocks == 0) revert InvalidParameters("minRoundBlocks");
        if (p.maxRoundBlocks < p.minRoundBlocks || p.maxRoundBlocks < p.minReportWindowBlocks) {
            revert InvalidParameters("maxRoundBlocks");
        }
        if (p.minReportWindowBlocks == 0) revert InvalidParameters("minReportWindowBlocks");
        if (p.verdictWindowBlocks == 0) revert InvalidParameters("verdictWindowBlocks");
        if (p.creditWindowRounds == 0) revert InvalidParameters("creditWindowRounds");
        if (uint256(p.exchangeFee) + p.disputeBond > p.minStake) revert InvalidParameters("minStake");
    }
}
