// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title OrganizationRegistry
/// @notice Registration, stake, reputation, credits, exit and withdrawals of the organizations
///         of the knexa marketplace. The round logic lives in {KnexaMarket}, which inherits this.
/// @dev All value held by the contract is accounted in exactly one of three places:
///      an organization's `stake`, an account's `pendingWithdrawal`, or the fee escrow of an open
///      round (`_escrowedFees`). Tests check that their sum always equals the contract's balance.
abstract contract OrganizationRegistry is AccessControl, ReentrancyGuard {
    /// @notice Fixed-point scale of reputation, credits and gains (1.0 == 1e18).
    uint256 public constant WAD = 1e18;
    /// @notice Reputation of a newly registered organization (0.5).
    uint256 public constant INITIAL_REPUTATION = WAD / 2;
    /// @notice Longest display name in bytes.
    uint256 public constant MAX_NAME_BYTES = 64;
    /// @notice Longest CID in bytes (a CIDv1 with a 64-byte multihash fits comfortably).
    uint256 public constant MAX_CID_BYTES = 128;

    /// @notice Life cycle of an organization. `Exiting` organizations cannot be paired.
    enum OrganizationStatus {
        None,
        Active,
        Exiting,
        Exited
    }

    /// @notice On-chain state of one organization.
    /// @param status life-cycle state
    /// @param registeredAtBlock block of registration
    /// @param exitAvailableAtBlock first block at which an exiting organization may complete its exit
    /// @param stake slashable stake in wei (also pays exchange fees as a student)
    /// @param reputation EMA of punctuality and delivered gains, WAD-scaled in [0, 1]
    /// @param credits sum of positive gains this organization caused as a teacher, WAD-scaled
    /// @param profileDigest keccak256 of the current profile document's CID bytes
    /// @param name display name
    /// @param encryptionPublicKey compressed secp256k1 key that bundles for this organization are encrypted to
    struct Organization {
        OrganizationStatus status;
        uint64 registeredAtBlock;
        uint64 exitAvailableAtBlock;
        uint256 stake;
        uint256 reputation;
        uint256 credits;
        bytes32 profileDigest;
        string name;
        bytes encryptionPublicKey;
    }

    /// @notice Market parameters; changed only by the admin and only while no round is open.
    /// @param minStake smallest stake to register and to be paired, in wei
    /// @param exchangeFee wei a student pays for one bundle, escrowed from its stake when a round opens
    /// @param exitCooldownBlocks blocks between an exit request and the release of the stake
    /// @param minRoundBlocks shortest allowed distance from opening to deadline
    /// @param maxRoundBlocks longest allowed distance from opening to deadline
    /// @param slashBps share of stake (basis points) a no-show loses to its counterparty
    /// @param reputationWeightBps weight (basis points) of the newest observation in the reputation EMA
    /// @param maxPairsPerRound bound on the pairs of one round, so that every loop is bounded
    struct MarketParameters {
        uint256 minStake;
        uint256 exchangeFee;
        uint64 exitCooldownBlocks;
        uint64 minRoundBlocks;
        uint64 maxRoundBlocks;
        uint16 slashBps;
        uint16 reputationWeightBps;
        uint16 maxPairsPerRound;
    }

    /// @notice Hard upper bound on `maxPairsPerRound`, so that finalization always fits in a block.
    uint16 public constant MAX_PAIRS_LIMIT = 256;

    MarketParameters internal _parameters;
    mapping(address organization => Organization) internal _organizations;
    address[] internal _organizationList;
    mapping(address account => uint256) public pendingWithdrawal;
    uint256 internal _escrowedFees;

    /// @notice An organization registered with `stake` wei.
    event OrganizationRegistered(
        address indexed organization, string name, bytes profileCid, bytes encryptionPublicKey, uint256 stake
    );
    /// @notice An organization published a new profile document.
    event ProfileUpdated(address indexed organization, bytes profileCid);
    /// @notice An organization added stake.
    event StakeAdded(address indexed organization, uint256 amount, uint256 newStake);
    /// @notice An organization asked to leave; its stake is released at `availableAtBlock`.
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
    /// @notice The proposed market parameters are inconsistent.
    error InvalidParameters();

    constructor(address admin, MarketParameters memory initialParameters) {
        _validateParameters(initialParameters);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _parameters = initialParameters;
        emit ParametersUpdated(initialParameters);
    }

    // ------------------------------------------------------------------ registration

    /// @notice Register the caller as an organization, staking `msg.value` wei.
    /// @param name display name, 1 to MAX_NAME_BYTES bytes
    /// @param profileCid CID of the sanitised profile document on IPFS
    /// @param encryptionPublicKey 33-byte compressed secp256k1 key that bundles are encrypted to
    function register(string calldata name, bytes calldata profileCid, bytes calldata encryptionPublicKey)
        external
        payable
    {
        Organization storage org = _organizations[msg.sender];
        if (org.status != OrganizationStatus.None) revert AlreadyRegistered(msg.sender);
        if (msg.value < _parameters.minStake) revert StakeTooLow(msg.value, _parameters.minStake);
        uint256 nameLength = bytes(name).length;
        if (nameLength == 0 || nameLength > MAX_NAME_BYTES) revert InvalidName();
        _requireValidCid(profileCid);
        _requireValidPublicKey(encryptionPublicKey);

        org.status = OrganizationStatus.Active;
        org.registeredAtBlock = uint64(block.number);
        org.stake = msg.value;
        org.reputation = INITIAL_REPUTATION;
        org.profileDigest = keccak256(profileCid);
        org.name = name;
        org.encryptionPublicKey = encryptionPublicKey;
        _organizationList.push(msg.sender);
        emit OrganizationRegistered(msg.sender, name, profileCid, encryptionPublicKey, msg.value);
    }

    /// @notice Point the caller's profile at a new sanitised profile document.
    /// @param profileCid CID of the new profile document
    function updateProfile(bytes calldata profileCid) external {
        Organization storage org = _requireActive(msg.sender);
        _requireValidCid(profileCid);
        org.profileDigest = keccak256(profileCid);
        emit ProfileUpdated(msg.sender, profileCid);
    }

    /// @notice Add `msg.value` wei to the caller's stake (e.g. after a slash or fees).
    function addStake() external payable {
        Organization storage org = _requireActive(msg.sender);
        if (msg.value == 0) revert ZeroAmount();
        org.stake += msg.value;
        emit StakeAdded(msg.sender, msg.value, org.stake);
    }

    /// @notice Start leaving the market. The caller can no longer be paired; its stake is released
    ///         after `exitCooldownBlocks`. Not allowed while the caller takes part in an open round.
    function requestExit() external {
        Organization storage org = _requireActive(msg.sender);
        uint256 openRound = _openRoundOf(msg.sender);
        if (openRound != 0) revert InOpenRound(msg.sender, openRound);
        uint64 availableAt = uint64(block.number) + _parameters.exitCooldownBlocks;
        org.status = OrganizationStatus.Exiting;
        org.exitAvailableAtBlock = availableAt;
        emit ExitRequested(msg.sender, availableAt);
    }

    /// @notice Finish leaving: the remaining stake becomes withdrawable with {withdraw}.
    function completeExit() external {
        Organization storage org = _organizations[msg.sender];
        if (org.status != OrganizationStatus.Exiting) revert ExitNotRequested(msg.sender);
        if (block.number < org.exitAvailableAtBlock) revert CooldownNotOver(org.exitAvailableAtBlock);
        uint256 released = org.stake;
        org.stake = 0;
        org.status = OrganizationStatus.Exited;
        pendingWithdrawal[msg.sender] += released;
        emit OrganizationExited(msg.sender, released);
    }

    /// @notice Send the caller everything it is owed (fees earned, slashes received, released stake).
    function withdraw() external nonReentrant {
        uint256 amount = pendingWithdrawal[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingWithdrawal[msg.sender] = 0;
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert TransferFailed(msg.sender);
        emit Withdrawn(msg.sender, amount);
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

    /// @notice The full state of `organization` (status None if never registered).
    function organization(address organizationAddress) external view returns (Organization memory) {
        return _organizations[organizationAddress];
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

    /// @notice Wei held in escrow for exchange fees of the open round.
    function escrowedFees() external view returns (uint256) {
        return _escrowedFees;
    }

    // ------------------------------------------------------------------ internal

    /// @dev The id of the open round `organization` takes part in, or 0.
    function _openRoundOf(address organization) internal view virtual returns (uint256);

    /// @dev Reverts if a round is open.
    function _requireNoOpenRound() internal view virtual;

    function _requireActive(address organizationAddress) internal view returns (Organization storage org) {
        org = _organizations[organizationAddress];
        if (org.status == OrganizationStatus.None || org.status == OrganizationStatus.Exited) {
            revert UnknownOrganization(organizationAddress);
        }
        if (org.status != OrganizationStatus.Active) revert OrganizationNotActive(organizationAddress);
    }

    function _requireValidCid(bytes calldata cid) internal pure {
        if (cid.length == 0 || cid.length > MAX_CID_BYTES) revert InvalidCid();
    }

    function _requireValidPublicKey(bytes calldata key) internal pure {
        if (key.length != 33 || (key[0] != 0x02 && key[0] != 0x03)) revert InvalidPublicKey();
    }

    function _validateParameters(MarketParameters memory p) internal pure {
        if (
            p.slashBps > 10_000 || p.reputationWeightBps == 0 || p.reputationWeightBps > 10_000
                || p.maxPairsPerRound == 0 || p.maxPairsPerRound > MAX_PAIRS_LIMIT || p.minRoundBlocks == 0
                || p.maxRoundBlocks < p.minRoundBlocks || p.exchangeFee > p.minStake
        ) revert InvalidParameters();
    }
}
