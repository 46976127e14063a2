// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721Base} from "./ERC721Base.sol";
import {Owned} from "./Owned.sol";

/// @notice Soulbound proof-of-attendance tokens. A mint needs a signature of the contract owner
/// over (chain id, this contract, eventId, attendee, nonce, deadline), as an EIP-191 personal
/// message of the keccak256 of their ABI encoding.
contract POAPAttendance is ERC721Base, Owned {
    struct Attendance {
        uint256 eventId;
        uint256 tokenId;
        address attendee;
        uint256 timestamp;
    }

    event AttendanceMinted(uint256 indexed eventId, address indexed attendee, uint256 tokenId);
    event EIP712DomainChanged();

    error AlreadyClaimed();
    error InvalidSignature();
    error SoulboundTransfer();
    error SignatureExpired(uint256 deadline);
    error InvalidNonce(uint256 expected);

    address public eventFactory;
    mapping(uint256 => Attendance) public attendances;
    mapping(uint256 => mapping(address => bool)) public hasClaimed;
    mapping(address => uint256) public nonces;
    uint256 private _lastTokenId;

    constructor(address _eventFactory) {
        _setNames("Echain Attendance", "EPOAP");
        eventFactory = _eventFactory;
        _transferOwnership(msg.sender);
    }

    function mintAttendance(uint256 eventId, address attendee, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
    {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        if (hasClaimed[eventId][attendee]) revert AlreadyClaimed();
        if (nonce != nonces[attendee]) revert InvalidNonce(nonces[attendee]);
        bytes32 digest = keccak256(abi.encode(block.chainid, address(this), eventId, attendee, nonce, deadline));
        if (_signer(digest, signature) != owner()) revert InvalidSignature();

        nonces[attendee] = nonce + 1;
        hasClaimed[eventId][attendee] = true;
        uint256 tokenId = ++_lastTokenId;
        attendances[tokenId] = Attendance(eventId, tokenId, attendee, block.timestamp);
        _mint(attendee, tokenId);
        emit AttendanceMinted(eventId, attendee, tokenId);
    }

    function getAttendance(uint256 tokenId) external view returns (Attendance memory) {
        _requireOwned(tokenId);
        return attendances[tokenId];
    }

    function setEventFactory(address _eventFactory) external onlyOwner {
        eventFactory = _eventFactory;
    }

    function _beforeTokenTransfer(address from, address to, uint256) internal pure override {
        if (from != address(0) && to != address(0)) revert SoulboundTransfer();
    }

    /// @dev Recovers the signer of the EIP-191 personal message of digest; 65-byte r‖s‖v.
    function _signer(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) revert InvalidSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        bytes32 message = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        address signer = ecrecover(message, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
        return signer;
    }
}
