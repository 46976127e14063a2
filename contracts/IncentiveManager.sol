// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721Base} from "./ERC721Base.sol";
import {Pausable} from "./Owned.sol";

interface IEventTicketView {
    function balanceOf(address owner) external view returns (uint256);
    function eventId() external view returns (uint256);
    function factory() external view returns (address);
}

/// @notice Reward NFTs (early-bird and loyalty) and referral codes.
contract IncentiveManager is ERC721Base, Pausable {
    struct Reward {
        uint256 rewardId;
        address user;
        string rewardType;
        uint256 eventId;
        uint256 timestamp;
    }

    event RewardMinted(uint256 rewardId, address user, string rewardType, uint256 eventId);
    event ReferralCodeGenerated(bytes32 code, address inviter);
    event ReferralUsed(address invitee, address inviter);

    error NotATicketOfEvent(address ticketContract, uint256 eventId);
    error NoTicket(address account);
    error AlreadyClaimed();
    error EarlyBirdSoldOut(uint256 eventId);
    error NotEnoughPoints(uint256 have, uint256 need);
    error CodeTaken(bytes32 code);
    error UnknownCode(bytes32 code);
    error InvalidReferral(address invitee);

    uint256 private constant POINTS_PER_ATTENDANCE = 100;

    address public eventFactory;
    address public eventTicket;
    address public poapAttendance;
    uint256 public earlyBirdLimit = 100;
    uint256 public nextRewardId = 1;
    mapping(uint256 => Reward) public rewards;
    mapping(uint256 => mapping(address => bool)) public earlyBirdClaimed;
    mapping(address => uint256) public loyaltyPoints;
    mapping(bytes32 => address) public referralCodes;
    mapping(address => address) public referredBy;
    mapping(address => uint256) public referralRewards;
    mapping(uint256 => uint256) private _earlyBirdCount;
    mapping(address => uint256) private _attendancesCounted;

    constructor(address _eventFactory, address _eventTicket, address _poapAttendance) {
        _setNames("Echain Rewards", "ERWD");
        eventFactory = _eventFactory;
        eventTicket = _eventTicket;
        poapAttendance = _poapAttendance;
        _transferOwnership(msg.sender);
    }

    /// @notice One early-bird reward per holder and event, for the first earlyBirdLimit claimants.
    function claimEarlyBird(uint256 eventId, address ticketContract) external whenNotPaused {
        IEventTicketView ticket = IEventTicketView(ticketContract);
        if (ticket.factory() != eventFactory || ticket.eventId() != eventId) {
            revert NotATicketOfEvent(ticketContract, eventId);
        }
        if (ticket.balanceOf(msg.sender) == 0) revert NoTicket(msg.sender);
        if (earlyBirdClaimed[eventId][msg.sender]) revert AlreadyClaimed();
        if (_earlyBirdCount[eventId] >= earlyBirdLimit) revert EarlyBirdSoldOut(eventId);
        earlyBirdClaimed[eventId][msg.sender] = true;
        ++_earlyBirdCount[eventId];
        _reward(msg.sender, "early_bird", eventId);
    }

    /// @notice Credits POINTS_PER_ATTENDANCE for each attendance token not yet counted.
    function updateLoyaltyPoints(address user) public {
        uint256 held = ERC721Base(poapAttendance).balanceOf(user);
        uint256 counted = _attendancesCounted[user];
        if (held > counted) {
            loyaltyPoints[user] += (held - counted) * POINTS_PER_ATTENDANCE;
            _attendancesCounted[user] = held;
        }
    }

    /// @notice Spends threshold points on a loyalty reward (not tied to an event: eventId 0).
    function claimLoyaltyReward(uint256 threshold) external whenNotPaused {
        updateLoyaltyPoints(msg.sender);
        uint256 have = loyaltyPoints[msg.sender];
        if (threshold == 0 || have < threshold) revert NotEnoughPoints(have, threshold);
        loyaltyPoints[msg.sender] = have - threshold;
        _reward(msg.sender, "loyalty", 0);
    }

    function generateReferralCode(bytes32 code) external {
        if (code == bytes32(0) || referralCodes[code] != address(0)) revert CodeTaken(code);
        referralCodes[code] = msg.sender;
        emit ReferralCodeGenerated(code, msg.sender);
    }

    /// @notice The invitee records who referred them; once per invitee, never oneself.
    function useReferralCode(bytes32 code, address invitee) external {
        address inviter = referralCodes[code];
        if (inviter == address(0)) revert UnknownCode(code);
        if (invitee != msg.sender || invitee == inviter || referredBy[invitee] != address(0)) {
            revert InvalidReferral(invitee);
        }
        referredBy[invitee] = inviter;
        ++referralRewards[inviter];
        emit ReferralUsed(invitee, inviter);
    }

    function getReferralCode(bytes32 code) external view returns (address) {
        return referralCodes[code];
    }

    function getReward(uint256 rewardId) external view returns (Reward memory) {
        return rewards[rewardId];
    }

    function setEarlyBirdLimit(uint256 _limit) external onlyOwner {
        earlyBirdLimit = _limit;
    }

    function setEventFactory(address _eventFactory) external onlyOwner {
        eventFactory = _eventFactory;
    }

    function setEventTicket(address _eventTicket) external onlyOwner {
        eventTicket = _eventTicket;
    }

    function setPoapAttendance(address _poapAttendance) external onlyOwner {
        poapAttendance = _poapAttendance;
    }

    function _reward(address user, string memory rewardType, uint256 eventId) private {
        uint256 rewardId = nextRewardId++;
        rewards[rewardId] = Reward(rewardId, user, rewardType, eventId, block.timestamp);
        _mint(user, rewardId);
        emit RewardMinted(rewardId, user, rewardType, eventId);
    }
}
