// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The few Foundry cheatcodes these tests use (forge-std from npm is broken; see docs/toolchain.md).
interface Vm {
    function deal(address account, uint256 newBalance) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function roll(uint256 newHeight) external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function assume(bool condition) external pure;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function lastCallGas() external view returns (Gas memory);
}

/// @notice Gas of the last call, as `lastCallGas` returns it.
struct Gas {
    uint64 gasLimit;
    uint64 gasTotalUsed;
    uint64 gasMemoryUsed;
    int64 gasRefunded;
    uint64 gasRemaining;
}

/// @notice A log as `getRecordedLogs` returns it.
struct Log {
    bytes32[] topics;
    bytes data;
    address emitter;
}

/// @notice Base of the test contracts: the cheatcode handle and small assertion helpers.
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error AssertionFailed(string what, uint256 left, uint256 right);

    function assertEq(uint256 left, uint256 right, string memory what) internal pure {
        if (left != right) revert AssertionFailed(what, left, right);
    }

    function assertEq(int256 left, int256 right, string memory what) internal pure {
        // forge-lint: disable-next-line(unsafe-typecast) only the bit pattern is reported
        if (left != right) revert AssertionFailed(what, uint256(left), uint256(right));
    }

    function assertEq(address left, address right, string memory what) internal pure {
        if (left != right) revert AssertionFailed(what, uint160(left), uint160(right));
    }

    function assertEq(bytes32 left, bytes32 right, string memory what) internal pure {
        if (left != right) revert AssertionFailed(what, uint256(left), uint256(right));
    }

    function assertLe(uint256 left, uint256 right, string memory what) internal pure {
        if (left > right) revert AssertionFailed(what, left, right);
    }

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what, 0, 1);
    }

    /// @dev Map `x` into [low, high] (forge-std's `bound`, written for these tests).
    function clamp(uint256 x, uint256 low, uint256 high) internal pure returns (uint256) {
        if (high <= low) return low;
        return low + (x % (high - low + 1));
    }
}
