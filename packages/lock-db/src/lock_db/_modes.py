"""Lock modes: the multi-granularity lattice and the tables the manager reads.

Theory of operation
-------------------
Gray's multi-granularity locking gives five modes. ``S`` and ``X`` are the plain shared and
exclusive locks. The *intention* modes ``IS`` and ``IX`` are taken on a coarse resource (a
table, a collection) to announce shared or exclusive locks on finer resources below it
(rows, keys), so a coarse ``S`` or ``X`` can see them without scanning. ``SIX`` is ``S``
plus ``IX``: read everything, update some.

Two tables define the semantics, and every decision the manager makes reads one of them:

- the **compatibility matrix** (symmetric): may two *different* owners hold these modes on
  one resource at the same time?

  ====  ===  ===  ===  ===  ===
  held  IS   IX   S    SIX  X
  ====  ===  ===  ===  ===  ===
  IS    yes  yes  yes  yes  no
  IX    yes  yes  no   no   no
  S     yes  no   yes  no   no
  SIX   yes  no   no   no   no
  X     no   no   no   no   no
  ====  ===  ===  ===  ===  ===

- the **supremum** (least upper bound) in the lattice ``IS < IX, IS < S, IX < SIX,
  S < SIX, SIX < X``, with ``IX`` and ``S`` incomparable and ``sup(IX, S) = SIX``. An owner
  that holds ``h`` and asks for ``m`` ends up holding ``sup(h, m)``: that is the whole
  upgrade rule, and it never lowers a mode. ``a`` *covers* ``b`` when ``sup(a, b) = a``;
  a mode is incompatible with everything the modes it covers are incompatible with, which
  is what makes an upgrade safe to reason about.

The manager works on small integer codes (``LockMode.X._value_ == 4``) and bit masks, so a
compatibility test on the fast path is one ``&`` of a resource's "modes present" mask with
the request's conflict mask: ``present & CONFLICTS[code] == 0``.
"""

from __future__ import annotations

import enum

from .errors import LockTypeError

__all__ = ["LockMode", "BITS", "COMPATIBLE", "CONFLICTS", "MODES", "SUPREMUM", "mode_error"]


class LockMode(enum.Enum):
    """A lock mode: ``IS``, ``IX``, ``S``, ``SIX`` or ``X``.

    Members are compared by identity; their integer values are an implementation detail
    and their numeric order is *not* the lattice order (``IX`` and ``S`` are incomparable).
    Use :meth:`covers`, :meth:`supremum` and :meth:`compatible_with` instead.
    """

    IS = 0
    IX = 1
    S = 2
    SIX = 3
    X = 4

    def compatible_with(self, other: LockMode) -> bool:
        """Whether two different owners may hold ``self`` and ``other`` at once.

        Args:
            other: the other mode.

        Returns:
            The entry of the compatibility matrix (symmetric).

        Raises:
            LockTypeError: ``other`` is not a :class:`LockMode`.
        """
        if type(other) is not LockMode:
            raise mode_error(other)
        return COMPATIBLE[self._value_][other._value_]

    def supremum(self, other: LockMode) -> LockMode:
        """The least mode that covers both: what an owner holds after an upgrade.

        Args:
            other: the other mode.

        Returns:
            ``sup(self, other)`` in the lattice, e.g. ``LockMode.IX.supremum(LockMode.S)``
            is ``LockMode.SIX``.

        Raises:
            LockTypeError: ``other`` is not a :class:`LockMode`.
        """
        if type(other) is not LockMode:
            raise mode_error(other)
        return MODES[SUPREMUM[self._value_][other._value_]]

    def covers(self, other: LockMode) -> bool:
        """Whether holding ``self`` already grants everything ``other`` grants.

        Args:
            other: the other mode.

        Returns:
            ``True`` if ``self.supremum(other) is self``: asking for ``other`` while holding
            ``self`` changes nothing.

        Raises:
            LockTypeError: ``other`` is not a :class:`LockMode`.
        """
        if type(other) is not LockMode:
            raise mode_error(other)
        return SUPREMUM[self._value_][other._value_] == self._value_


def mode_error(mode: object) -> LockTypeError:
    """The error for a mode argument that is not a :class:`LockMode`."""
    hint = ""
    if isinstance(mode, str) and mode.upper() in LockMode.__members__:
        hint = f" (use LockMode.{mode.upper()})"
    return LockTypeError(f"mode must be a LockMode, got {type(mode).__name__} {mode!r}{hint}")


#: Members by integer code.
MODES: tuple[LockMode, ...] = tuple(LockMode)

_YES, _NO = True, False
#: ``COMPATIBLE[a][b]``: may different owners hold codes ``a`` and ``b`` together.
COMPATIBLE: tuple[tuple[bool, ...], ...] = (
    # IS    IX    S     SIX   X
    (_YES, _YES, _YES, _YES, _NO),  # IS
    (_YES, _YES, _NO, _NO, _NO),  # IX
    (_YES, _NO, _YES, _NO, _NO),  # S
    (_YES, _NO, _NO, _NO, _NO),  # SIX
    (_NO, _NO, _NO, _NO, _NO),  # X
)

_IS, _IX, _S, _SIX, _X = range(5)
#: ``SUPREMUM[a][b]``: the code of the least upper bound of codes ``a`` and ``b``.
SUPREMUM: tuple[tuple[int, ...], ...] = (
    # IS    IX    S     SIX   X
    (_IS, _IX, _S, _SIX, _X),  # IS
    (_IX, _IX, _SIX, _SIX, _X),  # IX
    (_S, _SIX, _S, _SIX, _X),  # S
    (_SIX, _SIX, _SIX, _SIX, _X),  # SIX
    (_X, _X, _X, _X, _X),  # X
)

#: ``BITS[code]``: the bit of a mode in a "modes present" mask.
BITS: tuple[int, ...] = tuple(1 << code for code in range(5))

#: ``CONFLICTS[code]``: the mask of every mode incompatible with ``code``.
CONFLICTS: tuple[int, ...] = tuple(
    sum(BITS[other] for other in range(5) if not COMPATIBLE[code][other]) for code in range(5)
)
