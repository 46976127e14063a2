// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice A minimal contract account for the dev chain: its owner makes it call any contract.
/// Calls made through it (createEvent, purchaseTicket, ...) have the wallet as msg.sender and
/// top-level calldata that is `execute(...)`, not the inner call, so an indexer must read
/// values from contract state or logs rather than from the transaction's input.
contract SmartWallet {
    error NotOwner(address account);

    address public immutable owner;

    constructor(address owner_) payable {
        owner = owner_;
    }

    receive() external payable {}

    function execute(address target, uint256 value, bytes calldata data)
        external
        payable
        returns (bytes memory result)
    {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        bool ok;
        (ok, result) = target.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result)) // bubble the inner revert up unchanged
            }
        }
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }
}
