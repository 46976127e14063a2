// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721Base} from "./ERC721Base.sol";
import {Pausable} from "./Owned.sol";

/// @notice The ticket NFT of one event. The factory deploys one EIP-1167 clone of a template per
/// event and initialises it; the template itself can never be initialised.
contract EventTicket is ERC721Base, Pausable {
    struct TicketInfo {
        uint256 eventId;
        uint256 seatNumber;
        uint256 tier;
        bool isUsed;
        uint256 mintedAt;
        address originalBuyer;
    }

    // One storage slot per ticket; seat and tier get their own slots only when non-zero.
    struct Ticket {
        address originalBuyer;
        uint64 mintedAt;
        bool isUsed;
        bool restricted;
    }

    event TicketMinted(
        uint256 indexed tokenId, address indexed to, uint256 indexed eventId, uint256 seatNumber, uint256 tier
    );
    event TicketUsed(uint256 indexed tokenId, address indexed holder, uint256 timestamp);
    event TicketTransferRestricted(uint256 indexed tokenId, bool restricted);
    event FundsWithdrawn(address indexed owner, uint256 amount);
    event MaxTicketsPerAddressUpdated(uint256 newLimit);
    event RoyaltyInfoUpdated(address indexed recipient, uint96 feeBps);
    event MetadataUpdate(uint256 _tokenId);
    event BatchMetadataUpdate(uint256 _fromTokenId, uint256 _toTokenId);

    error AlreadyInitialized();
    error NotOrganizer(address account);
    error InvalidQuantity(uint256 quantity);
    error IncorrectPayment(uint256 paid, uint256 due);
    error SoldOut();
    error PerAddressLimit(address account);
    error TicketAlreadyUsed(uint256 tokenId);
    error TransferRestricted(uint256 tokenId);
    error LengthMismatch();
    error WithdrawFailed();

    uint256 private constant MAX_PER_PURCHASE = 10;
    uint256 private constant MAX_BATCH = 50;

    bool private _initialized;
    address public organizer;
    address public factory;
    uint256 public eventId;
    uint256 public ticketPrice;
    uint256 public maxSupply;
    uint256 public totalSold; // also the last token id: ids are 1..totalSold
    uint256 public maxTicketsPerAddress; // 0: no limit
    uint256 public organizerBalance;

    mapping(uint256 => Ticket) private _tickets;
    mapping(uint256 => uint256) private _seats;
    mapping(uint256 => uint256) private _tiers;

    modifier onlyOrganizer() {
        if (msg.sender != organizer) revert NotOrganizer(msg.sender);
        _;
    }

    constructor() {
        _initialized = true; // clones have their own (empty) storage, so only the template is locked
    }

    function initialize(
        string calldata name_,
        string calldata symbol_,
        address _organizer,
        uint256 _eventId,
        uint256 _ticketPrice,
        uint256 _maxSupply,
        address _factory
    ) external {
        if (_initialized) revert AlreadyInitialized();
        _initialized = true;
        _setNames(name_, symbol_);
        organizer = _organizer;
        eventId = _eventId;
        ticketPrice = _ticketPrice;
        maxSupply = _maxSupply;
        factory = _factory;
        _transferOwnership(_organizer); // OwnershipTransferred(0, organizer): the clone's first log
    }

    function purchaseTicket(uint256 quantity) external payable whenNotPaused returns (uint256[] memory tokenIds) {
        if (quantity == 0 || quantity > MAX_PER_PURCHASE) revert InvalidQuantity(quantity);
        uint256 due = ticketPrice * quantity;
        if (msg.value != due) revert IncorrectPayment(msg.value, due);
        organizerBalance += msg.value;
        tokenIds = new uint256[](quantity);
        for (uint256 i; i < quantity; ++i) {
            tokenIds[i] = _mintTicket(msg.sender, 0, 0);
        }
    }

    function mintTicket(address to, uint256 seatNumber, uint256 tier)
        external
        payable
        onlyOrganizer
        returns (uint256 tokenId)
    {
        organizerBalance += msg.value;
        return _mintTicket(to, seatNumber, tier);
    }

    function batchMintTickets(address[] calldata to, uint256[] calldata seatNumbers, uint256[] calldata tiers)
        external
        payable
        onlyOrganizer
        returns (uint256[] memory tokenIds)
    {
        if (to.length != seatNumbers.length || to.length != tiers.length) revert LengthMismatch();
        if (to.length == 0 || to.length > MAX_BATCH) revert InvalidQuantity(to.length);
        organizerBalance += msg.value;
        tokenIds = new uint256[](to.length);
        for (uint256 i; i < to.length; ++i) {
            tokenIds[i] = _mintTicket(to[i], seatNumbers[i], tiers[i]);
        }
    }

    function useTicket(uint256 tokenId) external onlyOrganizer {
        address holder = _requireOwned(tokenId);
        Ticket storage t = _tickets[tokenId];
        if (t.isUsed) revert TicketAlreadyUsed(tokenId);
        t.isUsed = true;
        emit TicketUsed(tokenId, holder, block.timestamp);
    }

    function setTransferRestriction(uint256 tokenId, bool restricted) external onlyOrganizer {
        _requireOwned(tokenId);
        _tickets[tokenId].restricted = restricted;
        emit TicketTransferRestricted(tokenId, restricted);
    }

    function burn(uint256 tokenId) external {
        address holder = _requireOwned(tokenId);
        if (!_isAuthorized(holder, msg.sender, tokenId)) revert ERC721InsufficientApproval(msg.sender, tokenId);
        _burn(tokenId);
    }

    function setMaxTicketsPerAddress(uint256 newLimit) external onlyOrganizer {
        maxTicketsPerAddress = newLimit;
        emit MaxTicketsPerAddressUpdated(newLimit);
    }

    function withdraw() external onlyOrganizer {
        uint256 amount = organizerBalance;
        organizerBalance = 0;
        (bool ok,) = organizer.call{value: amount}("");
        if (!ok) revert WithdrawFailed();
        emit FundsWithdrawn(organizer, amount);
    }

    function getTicketInfo(uint256 tokenId) external view returns (TicketInfo memory) {
        _requireOwned(tokenId);
        Ticket memory t = _tickets[tokenId];
        return TicketInfo(eventId, _seats[tokenId], _tiers[tokenId], t.isUsed, t.mintedAt, t.originalBuyer);
    }

    function isValidTicket(uint256 tokenId) external view returns (bool) {
        return tokenId != 0 && tokenId <= totalSold && !_tickets[tokenId].isUsed && _exists(tokenId);
    }

    function ticketsRemaining() external view returns (uint256) {
        return maxSupply - totalSold;
    }

    function _mintTicket(address to, uint256 seatNumber, uint256 tier) private returns (uint256 tokenId) {
        if (totalSold >= maxSupply) revert SoldOut();
        if (maxTicketsPerAddress != 0 && balanceOf(to) >= maxTicketsPerAddress) revert PerAddressLimit(to);
        tokenId = ++totalSold;
        _tickets[tokenId] = Ticket(to, uint64(block.timestamp), false, false);
        if (seatNumber != 0) _seats[tokenId] = seatNumber;
        if (tier != 0) _tiers[tokenId] = tier;
        _mint(to, tokenId); // Transfer(0, to, tokenId) comes before TicketMinted
        emit TicketMinted(tokenId, to, eventId, seatNumber, tier);
    }

    function _beforeTokenTransfer(address from, address to, uint256 tokenId) internal view override {
        // Mints and burns are never restricted; moves between holders are.
        if (from != address(0) && to != address(0) && _tickets[tokenId].restricted) {
            revert TransferRestricted(tokenId);
        }
    }
}
