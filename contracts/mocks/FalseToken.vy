# pragma version ~=0.4.3
"""
@title Test-only ERC-20 that can report failure by returning False, or take a fee
@notice Some ERC-20s signal a failed transfer by returning False instead of reverting. While
        `failing` is set, `transfer`, `transferFrom` and `approve` move nothing and return
        False, so tests can check that a contract refuses to go on when a token call fails.
        With `fee` set, `transferFrom` delivers `fee` less than asked (and burns it), as
        fee-on-transfer tokens do.
"""

# holder => balance
balanceOf: public(HashMap[address, uint256])
# owner => spender => allowance
allowance: public(HashMap[address, HashMap[address, uint256]])
# minted less burned
totalSupply: public(uint256)
# while set, transfers and approvals return False and change nothing
failing: public(bool)
# burned from every transferFrom: the receiver gets amount - fee
fee: public(uint256)


@external
def set_fee(fee: uint256):
    self.fee = fee


@external
def set_failing(failing: bool):
    self.failing = failing


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount


@external
def burn(amount: uint256):
    self.balanceOf[msg.sender] -= amount
    self.totalSupply -= amount


@external
def transfer(to: address, amount: uint256) -> bool:
    if self.failing:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.failing:
        return False
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - self.fee
    self.totalSupply -= self.fee
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    if self.failing:
        return False
    self.allowance[msg.sender][spender] = amount
    return True
