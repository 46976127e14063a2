// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Pausable} from "./Owned.sol";

interface ITicketTransfer {
    function transferFrom(address from, address to, uint256 tokenId) external;
}

/// @notice Secondary market for tickets: a listed ticket is held in escrow by this contract until
/// it is sold or the listing is cancelled.
contract Marketplace is Pausable {
    struct Listing {
        uint256 tokenId;
        address ticketContract;
        address seller;
        uint256 price;
        bool active;
        uint256 listedAt;
    }

    event TicketListed(
        bytes32 indexed listingId, address indexed ticketContract, uint256 indexed tokenId, address seller, uint256 price
    );
    event TicketSold(
        bytes32 indexed listingId, address indexed buyer, address indexed seller, uint256 price, uint256 marketplaceFee
    );
    event ListingCancelled(bytes32 indexed listingId, address indexed seller);
    event ContractApproved(address indexed ticketContract, bool approved);
    event MarketplaceFeeUpdated(uint256 newFee);
    event TreasuryUpdated(address newTreasury);

    error InvalidPrice();
    error ListingNotActive(bytes32 listingId);
    error NotSeller(address account);
    error IncorrectPayment(uint256 paid, uint256 due);
    error InvalidFee(uint256 fee);
    error PaymentFailed(address to);

    uint256 private constant MAX_FEE_BPS = 1000;

    uint256 public marketplaceFee = 250; // basis points of the sale price
    address public treasury;
    mapping(bytes32 => Listing) public listings;
    mapping(address => bool) public approvedContracts;
    uint256 private _listingNonce;

    constructor(address _treasury) {
        treasury = _treasury;
        _transferOwnership(msg.sender);
    }

    /// @notice Moves the ticket into escrow; the seller must have approved this contract for it.
    function listTicket(address ticketContract, uint256 tokenId, uint256 price)
        external
        whenNotPaused
        returns (bytes32 listingId)
    {
        if (price == 0) revert InvalidPrice();
        listingId = keccak256(abi.encode(ticketContract, tokenId, msg.sender, block.timestamp, ++_listingNonce));
        listings[listingId] = Listing(tokenId, ticketContract, msg.sender, price, true, block.timestamp);
        ITicketTransfer(ticketContract).transferFrom(msg.sender, address(this), tokenId);
        emit TicketListed(listingId, ticketContract, tokenId, msg.sender, price);
    }

    function buyTicket(bytes32 listingId) external payable whenNotPaused {
        Listing storage l = listings[listingId];
        if (!l.active) revert ListingNotActive(listingId);
        if (msg.value != l.price) revert IncorrectPayment(msg.value, l.price);
        l.active = false;
        uint256 fee = l.price * marketplaceFee / 10_000;
        ITicketTransfer(l.ticketContract).transferFrom(address(this), msg.sender, l.tokenId);
        emit TicketSold(listingId, msg.sender, l.seller, l.price, fee);
        _pay(l.seller, l.price - fee);
        _pay(treasury, fee);
    }

    function cancelListing(bytes32 listingId) external {
        if (msg.sender != listings[listingId].seller) revert NotSeller(msg.sender);
        _cancel(listingId);
    }

    function emergencyCancelListing(bytes32 listingId) external onlyOwner {
        _cancel(listingId);
    }

    function getListing(bytes32 listingId) external view returns (Listing memory) {
        return listings[listingId];
    }

    function setContractApproval(address ticketContract, bool approved) external onlyOwner {
        approvedContracts[ticketContract] = approved;
        emit ContractApproved(ticketContract, approved);
    }

    function setMarketplaceFee(uint256 newFee) external onlyOwner {
        if (newFee > MAX_FEE_BPS) revert InvalidFee(newFee);
        marketplaceFee = newFee;
        emit MarketplaceFeeUpdated(newFee);
    }

    function setTreasury(address newTreasury) external onlyOwner {
        treasury = newTreasury;
        emit TreasuryUpdated(newTreasury);
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }

    function _cancel(bytes32 listingId) private {
        Listing storage l = listings[listingId];
        if (!l.active) revert ListingNotActive(listingId);
        l.active = false;
        ITicketTransfer(l.ticketContract).transferFrom(address(this), l.seller, l.tokenId);
        emit ListingCancelled(listingId, l.seller);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert PaymentFailed(to);
    }
}
