// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title WhitelistScheduleStub
/// @notice A test-only L1 contract with the view interface of Taiko's PreconfWhitelist that
/// preconf-node reads (taiko-mono, packages/protocol/contracts/layer1/preconf/impl/
/// PreconfWhitelist.sol): getOperatorForCurrentEpoch(), getOperatorForNextEpoch() and the
/// public `operators(proposer)` getter, whose last field is the operator's sequencer (signing)
/// address. Differences, on purpose: the epoch comes from block.timestamp against a genesis
/// and an epoch length given to the constructor (the real contract uses the beacon genesis and
/// 32 slots of 12 s; tests use short epochs), and the test chooses each epoch's operator with
/// assignEpoch instead of the beacon-root randomness.
contract WhitelistScheduleStub {
    struct OperatorInfo {
        uint32 activeSince;
        uint32 inactiveSince;
        uint8 index;
        address sequencerAddress;
    }

    address public immutable owner;
    uint256 public immutable genesisTimestamp;
    uint256 public immutable secondsInEpoch;

    mapping(address proposer => OperatorInfo info) public operators;
    mapping(uint256 epoch => address proposer) public operatorOfEpoch;
    uint8 public operatorCount;

    error NotOwner();
    error BeforeGenesis();
    error ZeroAddress();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(uint256 _genesisTimestamp, uint256 _secondsInEpoch) {
        owner = msg.sender;
        genesisTimestamp = _genesisTimestamp;
        secondsInEpoch = _secondsInEpoch;
    }

    /// Registers (or re-keys) an operator: `_sequencer` signs its preconfirmations.
    function addOperator(address _proposer, address _sequencer) external onlyOwner {
        if (_proposer == address(0) || _sequencer == address(0)) revert ZeroAddress();
        OperatorInfo storage info = operators[_proposer];
        if (info.sequencerAddress == address(0)) {
            info.index = operatorCount;
            operatorCount += 1;
            info.activeSince = uint32(epochStartTimestamp(0));
        }
        info.sequencerAddress = _sequencer;
    }

    /// Makes `_proposer` the operator of epoch `_epoch` (address(0): no operator).
    function assignEpoch(uint256 _epoch, address _proposer) external onlyOwner {
        operatorOfEpoch[_epoch] = _proposer;
    }

    function currentEpoch() public view returns (uint256) {
        if (block.timestamp < genesisTimestamp) revert BeforeGenesis();
        return (block.timestamp - genesisTimestamp) / secondsInEpoch;
    }

    function epochStartTimestamp(uint256 _offset) public view returns (uint256) {
        return genesisTimestamp + (currentEpoch() + _offset) * secondsInEpoch;
    }

    function getOperatorForCurrentEpoch() external view returns (address) {
        return operatorOfEpoch[currentEpoch()];
    }

    function getOperatorForNextEpoch() external view returns (address) {
        return operatorOfEpoch[currentEpoch() + 1];
    }
}
