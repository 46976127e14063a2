// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Pausable} from "./Owned.sol";
import {EventTicket} from "./EventTicket.sol";

/// @notice Registry of events. Each event gets its own EventTicket: an EIP-1167 clone of the
/// template, deployed with CREATE2 so its address can be predicted.
contract EventFactory is Pausable {
    struct Event {
        uint256 id;
        address organizer;
        address ticketContract;
        address poapContract;
        address incentiveContract;
        string name;
        string metadataURI;
        uint256 ticketPrice;
        uint256 maxTickets;
        uint256 startTime;
        uint256 endTime;
        bool isActive;
        uint256 createdAt;
    }

    event EventCreated(
        uint256 indexed eventId,
        address indexed organizer,
        address indexed ticketContract,
        string name,
        uint256 ticketPrice,
        uint256 maxTickets
    );
    event EventUpdated(uint256 indexed eventId, string name, string metadataURI);
    event EventStatusChanged(uint256 indexed eventId, bool isActive);
    event OrganizerVerified(address indexed organizer);
    event OrganizerUnverified(address indexed organizer);
    event PlatformFeeUpdated(uint256 newFeeBps);
    event TreasuryChangeProposed(address newTreasury, uint256 executeAfter);
    event TreasuryUpdated(address newTreasury);

    error FailedDeployment();
    error NotVerifiedOrganizer(address account);
    error NotEventOrganizer(address account);
    error UnknownEvent(uint256 eventId);
    error InvalidEventParams();
    error InsufficientFee(uint256 paid, uint256 due);
    error InvalidFee(uint256 feeBps);

    uint256 public constant ORGANIZER_VERIFICATION_FEE = 0.002 ether;
    uint256 private constant MAX_PLATFORM_FEE_BPS = 1000;

    address public immutable eventTicketTemplate;
    address public treasury;
    uint256 public platformFeeBps;
    uint256 public eventCount;
    mapping(uint256 => Event) public events;
    mapping(address => bool) public verifiedOrganizers;
    mapping(address => uint256[]) public organizerEvents;

    constructor(address _eventTicketTemplate, address _treasury) {
        eventTicketTemplate = _eventTicketTemplate;
        treasury = _treasury;
        _transferOwnership(msg.sender);
    }

    /// @notice Anyone may verify themselves by paying the fee; a repeat verification logs again.
    function selfVerifyOrganizer(address organizer) external payable {
        if (organizer != msg.sender) revert NotEventOrganizer(msg.sender);
        if (msg.value < ORGANIZER_VERIFICATION_FEE) revert InsufficientFee(msg.value, ORGANIZER_VERIFICATION_FEE);
        verifiedOrganizers[organizer] = true;
        emit OrganizerVerified(organizer);
    }

    function unverifyOrganizer(address organizer) external onlyOwner {
        verifiedOrganizers[organizer] = false;
        emit OrganizerUnverified(organizer);
    }

    function isVerifiedOrganizer(address organizer) external view returns (bool) {
        return verifiedOrganizers[organizer];
    }

    function createEvent(
        string calldata name,
        string calldata metadataURI,
        uint256 ticketPrice,
        uint256 maxTickets,
        uint256 startTime,
        uint256 endTime
    ) external payable whenNotPaused returns (uint256 eventId) {
        if (!verifiedOrganizers[msg.sender]) revert NotVerifiedOrganizer(msg.sender);
        if (bytes(name).length == 0 || maxTickets == 0 || endTime <= startTime) revert InvalidEventParams();

        eventId = ++eventCount;
        address ticket = _deployClone(_salt(msg.sender, eventId, block.timestamp, block.number));
        // The clone's OwnershipTransferred(0, organizer) is logged here, before EventCreated.
        EventTicket(ticket).initialize(name, "ETIX", msg.sender, eventId, ticketPrice, maxTickets, address(this));

        Event storage e = events[eventId];
        e.id = eventId;
        e.organizer = msg.sender;
        e.ticketContract = ticket;
        e.name = name;
        e.metadataURI = metadataURI;
        e.ticketPrice = ticketPrice;
        e.maxTickets = maxTickets;
        e.startTime = startTime;
        e.endTime = endTime;
        e.isActive = true;
        e.createdAt = block.timestamp;
        organizerEvents[msg.sender].push(eventId);

        emit EventCreated(eventId, msg.sender, ticket, name, ticketPrice, maxTickets);
    }

    function updateEvent(uint256 eventId, string calldata name, string calldata metadataURI) external {
        Event storage e = _organizerEvent(eventId);
        if (bytes(name).length == 0) revert InvalidEventParams();
        e.name = name;
        e.metadataURI = metadataURI;
        emit EventUpdated(eventId, name, metadataURI);
    }

    function setEventStatus(uint256 eventId, bool isActive) external {
        Event storage e = _event(eventId);
        if (msg.sender != e.organizer && msg.sender != owner()) revert NotEventOrganizer(msg.sender);
        e.isActive = isActive;
        emit EventStatusChanged(eventId, isActive);
    }

    function emergencyDeactivateEvent(uint256 eventId) external onlyOwner {
        _event(eventId).isActive = false;
        emit EventStatusChanged(eventId, false);
    }

    function setPOAPContract(uint256 eventId, address poapContract) external {
        _organizerEvent(eventId).poapContract = poapContract;
    }

    function setIncentiveContract(uint256 eventId, address incentiveContract) external {
        _organizerEvent(eventId).incentiveContract = incentiveContract;
    }

    function setPlatformFee(uint256 newFeeBps) external onlyOwner {
        if (newFeeBps > MAX_PLATFORM_FEE_BPS) revert InvalidFee(newFeeBps);
        platformFeeBps = newFeeBps;
        emit PlatformFeeUpdated(newFeeBps);
    }

    function getEventDetails(uint256 eventId) external view returns (Event memory) {
        return _event(eventId);
    }

    function getOrganizerEvents(address organizer) external view returns (uint256[] memory) {
        return organizerEvents[organizer];
    }

    function getActiveEvents(uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory eventIds, bool hasMore)
    {
        uint256[] memory found = new uint256[](limit);
        uint256 n;
        uint256 skipped;
        for (uint256 id = 1; id <= eventCount; ++id) {
            if (!events[id].isActive) continue;
            if (skipped < offset) {
                ++skipped;
            } else if (n < limit) {
                found[n++] = id;
            } else {
                hasMore = true;
                break;
            }
        }
        eventIds = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            eventIds[i] = found[i];
        }
    }

    function predictTicketContractAddress(address organizer, uint256 eventId, uint256 timestamp, uint256 blockNumber)
        external
        view
        returns (address predictedAddress)
    {
        bytes32 h = keccak256(
            abi.encodePacked(
                bytes1(0xff), address(this), _salt(organizer, eventId, timestamp, blockNumber), keccak256(_cloneCode())
            )
        );
        return address(uint160(uint256(h)));
    }

    function _event(uint256 eventId) private view returns (Event storage e) {
        if (eventId == 0 || eventId > eventCount) revert UnknownEvent(eventId);
        return events[eventId];
    }

    function _organizerEvent(uint256 eventId) private view returns (Event storage e) {
        e = _event(eventId);
        if (msg.sender != e.organizer) revert NotEventOrganizer(msg.sender);
    }

    function _salt(address organizer, uint256 eventId, uint256 timestamp, uint256 blockNumber)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(organizer, eventId, timestamp, blockNumber));
    }

    /// @dev EIP-1167 creation code: a 10-byte constructor returning the 45-byte runtime that
    /// DELEGATECALLs every call to the template.
    function _cloneCode() private view returns (bytes memory) {
        return abi.encodePacked(
            hex"3d602d80600a3d3981f3363d3d373d3d3d363d73", eventTicketTemplate, hex"5af43d82803e903d91602b57fd5bf3"
        );
    }

    function _deployClone(bytes32 salt) private returns (address clone) {
        bytes memory code = _cloneCode();
        assembly ("memory-safe") {
            clone := create2(0, add(code, 0x20), mload(code), salt)
        }
        if (clone == address(0)) revert FailedDeployment();
    }
}
