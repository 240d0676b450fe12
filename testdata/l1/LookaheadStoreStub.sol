// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title LookaheadStoreStub
/// @notice A test-only L1 contract with the reader-facing ABI of Taiko's LookaheadStore
/// (taiko-mono, branch permissionless-preconf, packages/protocol/contracts/layer1/preconf/),
/// written from L1-LOOKAHEAD.md §2, §3 and §8: the same structs, events, selectors and storage
/// position of the `lookahead` ring buffer (mapping at slot 301, keyed by epoch % 503), so a
/// reader that works against this works against the real store.
/// Differences, on purpose: lists are posted by the owner with `postLookahead` (the real store
/// posts from `Inbox.propose` after checking URC registration, collateral and the poster's
/// signature); the blacklist is set by the owner directly. Epochs are 32 slots of 12 s from
/// beacon genesis 0, as on any chain without a known genesis (anvil).
contract LookaheadStoreStub {
    struct LookaheadSlot {
        address committer;
        uint256 timestamp;
        bytes32 registrationRoot;
        uint256 validatorLeafIndex;
    }

    struct LookaheadHash {
        uint48 epochTimestamp;
        bytes26 lookaheadHash;
    }

    struct LookaheadStoreConfig {
        uint16 lookaheadBufferSize;
        uint80 minCollateralForPosting;
        uint80 minCollateralForPreconfing;
    }

    struct LookaheadData {
        uint256 slotIndex;
        bytes32 registrationRoot;
        LookaheadSlot[] currLookahead;
        LookaheadSlot[] nextLookahead;
        bytes commitmentSignature;
    }

    struct ProposerContext {
        bool isFallback;
        address proposer;
        uint256 submissionWindowStart;
        uint256 submissionWindowEnd;
        LookaheadSlot lookaheadSlot;
    }

    struct BlacklistTimestamps {
        uint48 blacklistedAt;
        uint48 unBlacklistedAt;
    }

    event LookaheadPosted(uint256 indexed epochTimestamp, bytes32 lookaheadHash, LookaheadSlot[] lookaheadSlots);
    event Blacklisted(bytes32 indexed operatorRegistrationRoot, uint48 timestamp);
    event Unblacklisted(bytes32 indexed operatorRegistrationRoot, uint48 timestamp);

    error NotOwner();
    error InvalidLookahead();

    uint256 private constant SECONDS_IN_SLOT = 12;
    uint256 private constant SECONDS_IN_EPOCH = 384;
    uint256 private constant BUFFER_SIZE = 503;

    /// Slots 0..300, so that `lookahead` sits at slot 301 as in LookaheadStore_Layout.sol.
    uint256[301] private __layoutGap;
    mapping(uint256 bucket => LookaheadHash record) public lookahead;
    mapping(bytes32 registrationRoot => BlacklistTimestamps times) private blacklistTimes;

    address public immutable owner;
    address public immutable preconfWhitelist;

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(address _preconfWhitelist) {
        owner = msg.sender;
        preconfWhitelist = _preconfWhitelist;
    }

    /// Stores `_slots` as the list of epoch `_epochTimestamp` and emits `LookaheadPosted`, as
    /// `Inbox.propose` → `checkProposer` does. Rejects a list the real store could not hold
    /// (timestamps not increasing or outside the epoch); tests that need a record the reader
    /// must refuse use `setLookaheadHash`.
    function postLookahead(uint256 _epochTimestamp, LookaheadSlot[] calldata _slots) external onlyOwner {
        if (_epochTimestamp % SECONDS_IN_EPOCH != 0 || _slots.length > 32) revert InvalidLookahead();
        uint256 previous = 0;
        for (uint256 i; i < _slots.length; ++i) {
            uint256 ts = _slots[i].timestamp;
            if (ts < _epochTimestamp || ts >= _epochTimestamp + SECONDS_IN_EPOCH) revert InvalidLookahead();
            if ((ts - _epochTimestamp) % SECONDS_IN_SLOT != 0) revert InvalidLookahead();
            if (i > 0 && ts <= previous) revert InvalidLookahead();
            previous = ts;
        }
        bytes26 hash = calculateLookaheadHash(_epochTimestamp, _slots);
        lookahead[_epochTimestamp % BUFFER_SIZE] =
            LookaheadHash({epochTimestamp: uint48(_epochTimestamp), lookaheadHash: hash});
        emit LookaheadPosted(_epochTimestamp, bytes32(hash), _slots);
    }

    /// Overwrites epoch `_epochTimestamp`'s stored hash without an event (a record whose log
    /// a reader cannot match).
    function setLookaheadHash(uint256 _epochTimestamp, bytes26 _hash) external onlyOwner {
        lookahead[_epochTimestamp % BUFFER_SIZE] =
            LookaheadHash({epochTimestamp: uint48(_epochTimestamp), lookaheadHash: _hash});
    }

    function blacklistOperator(bytes32 _root) external onlyOwner {
        blacklistTimes[_root].blacklistedAt = uint48(block.timestamp);
        emit Blacklisted(_root, uint48(block.timestamp));
    }

    function unblacklistOperator(bytes32 _root) external onlyOwner {
        blacklistTimes[_root].unBlacklistedAt = uint48(block.timestamp);
        emit Unblacklisted(_root, uint48(block.timestamp));
    }

    function getLookaheadHash(uint256 _epochTimestamp) public view returns (bytes26) {
        LookaheadHash memory record = lookahead[_epochTimestamp % BUFFER_SIZE];
        return record.epochTimestamp == _epochTimestamp ? record.lookaheadHash : bytes26(0);
    }

    function calculateLookaheadHash(uint256 _epochTimestamp, LookaheadSlot[] memory _slots)
        public
        pure
        returns (bytes26)
    {
        return bytes26(keccak256(abi.encode(_epochTimestamp, _slots)));
    }

    function isLookaheadRequired() external view returns (bool) {
        uint256 epoch = block.timestamp - block.timestamp % SECONDS_IN_EPOCH;
        if (block.timestamp == epoch) return false;
        return getLookaheadHash(epoch + SECONDS_IN_EPOCH) == bytes26(0);
    }

    function getLookaheadStoreConfig() external pure returns (LookaheadStoreConfig memory) {
        return LookaheadStoreConfig({
            lookaheadBufferSize: uint16(BUFFER_SIZE),
            minCollateralForPosting: 1 ether,
            minCollateralForPreconfing: 1 ether
        });
    }

    function isOperatorBlacklisted(bytes32 _root) public view returns (bool) {
        BlacklistTimestamps memory t = blacklistTimes[_root];
        return t.blacklistedAt > t.unBlacklistedAt;
    }

    function getBlacklist(bytes32 _root) external view returns (BlacklistTimestamps memory) {
        return blacklistTimes[_root];
    }

    /// L1-LOOKAHEAD.md §4.1 steps 1–5 on the caller's arrays (§4.3: a calculator, no checks
    /// against storage).
    function getProposerContext(LookaheadData calldata _data, uint256 _epochTimestamp)
        external
        view
        returns (ProposerContext memory context_)
    {
        uint256 nextEpoch = _epochTimestamp + SECONDS_IN_EPOCH;
        if (_data.currLookahead.length == 0) {
            context_.isFallback = true;
            context_.submissionWindowStart = _epochTimestamp;
            context_.submissionWindowEnd = nextEpoch - SECONDS_IN_SLOT;
        } else if (_data.slotIndex == type(uint256).max) {
            context_.submissionWindowStart = _data.currLookahead[_data.currLookahead.length - 1].timestamp;
            if (_data.nextLookahead.length == 0) {
                context_.isFallback = true;
                context_.submissionWindowEnd = nextEpoch - SECONDS_IN_SLOT;
            } else {
                context_.lookaheadSlot = _data.nextLookahead[0];
                context_.submissionWindowEnd = _data.nextLookahead[0].timestamp;
            }
        } else {
            context_.submissionWindowStart = _data.slotIndex == 0
                ? _epochTimestamp - SECONDS_IN_SLOT
                : _data.currLookahead[_data.slotIndex - 1].timestamp;
            context_.lookaheadSlot = _data.currLookahead[_data.slotIndex];
            context_.submissionWindowEnd = context_.lookaheadSlot.timestamp;
        }
        if (!context_.isFallback && isOperatorBlacklisted(context_.lookaheadSlot.registrationRoot)) {
            context_.isFallback = true;
        }
        context_.proposer = context_.isFallback
            ? IFallbackWhitelist(preconfWhitelist).getOperatorForCurrentEpoch()
            : context_.lookaheadSlot.committer;
    }
}

interface IFallbackWhitelist {
    function getOperatorForCurrentEpoch() external view returns (address);
}
