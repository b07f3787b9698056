# pragma version ~=0.4.3
"""
@title bisectml bond token
@notice The ERC-20 in which task rewards, solver bonds and challenger bonds are paid
        ("bisectml bond", BOND, 18 decimals). A thin shell over snekmate's audited `erc20`
        module: it exposes the standard ERC-20 functions, `mint` by minters, `burn` of the
        caller's own balance, and the minter and ownership administration that `mint` needs.
        EIP-2612 `permit` and `burn_from` are deliberately not exported.
@custom:security Trust assumptions:
                 - The deployer is the owner and the first minter; the owner adds and removes
                   minters (`set_minter`). A minter can inflate the supply, so a production
                   deployment mints the initial supply, removes every other minter and calls
                   `renounce_ownership`, which fixes the supply apart from burns.
                 - The token has no transfer hooks, fees or blacklists: a transfer moves
                   exactly `amount` and cannot call back into the receiver. `Tasks.vy` relies
                   on this when it pushes payments and holds exactly what it owes.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    # the ERC-20 standard (https://eips.ethereum.org/EIPS/eip-20)
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    # supply: minters create, anyone destroys its own balance
    erc20.mint,
    erc20.burn,
    erc20.is_minter,
    erc20.set_minter,
    # ownership, in erc20's minter-aware versions (ownable's own would skip the minter role)
    ownable.owner,
    erc20.transfer_ownership,
    erc20.renounce_ownership,
)

NAME: constant(String[25]) = "bisectml bond"
SYMBOL: constant(String[5]) = "BOND"
DECIMALS: constant(uint8) = 18
# EIP-712 domain of the (unexported) permit; erc20's constructor requires one
EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__():
    """
    @notice The deployer becomes the owner and the first minter. The supply starts at zero.
    """
    ownable.__init__()
    erc20.__init__(NAME, SYMBOL, DECIMALS, NAME, EIP712_VERSION)
