// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @notice A minimal contract account for the dev chain: its owner makes it call any contract.
/// Calls made through it (createEvent, purchaseTicket, ...) have the wallet as msg.sender and
/// top-level calldata that is `execute(target, value, data)` (Coinbase Smart Wallet's selector),
/// not the inner call. An indexer may decode the inner call from that input only where the logs
/// prove it is what ran (the mappings' event details: the target is the factory, the organizer
/// is this wallet, the EventCreated logs match the decoded createEvent calls one to one); a
/// wallet that wraps calls any other way (nested, batched) leaves contract state or logs as the
/// only source.
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
