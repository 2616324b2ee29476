"""UCUM syntax: is a Quantity.code a valid UCUM expression? (No conversion, no dimensions.)

The grammar of the UCUM specification (https://ucum.org/ucum, section 2, "Syntax rules"),
case-sensitive form:

    term      := ["/"] component (("." | "/") component)*
    component := annotatable [annotation] | annotation | factor | "(" term ")"
    annotatable := simple-unit [exponent]       exponent := ["+" | "-"] digits
    simple-unit := atom | prefix metric-atom    annotation := "{" ASCII 33-126 but braces "}"

The atoms and prefixes below are the UCUM tables' case-sensitive codes (facts of the
specification, typed here, not copied from any implementation): base units, the metric
units (which take prefixes) and the non-metric ones (which do not). No PyPI package checks
UCUM syntax without dragging a grammar framework along; this is a few dozen lines.
"""

from __future__ import annotations

import functools
import re

PREFIXES = (
    "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "da", "d", "c", "m", "u", "n", "p", "f",
    "a", "z", "y", "Ki", "Mi", "Gi", "Ti",
)  # fmt: skip

_METRIC_CODES = """
    m s g rad K C cd mol sr Hz N Pa J W A V F Ohm S Wb Cel T H lm lx Bq Gy Sv l L ar t bar u
    eV pc [c] [h] [k] [eps_0] [mu_0] [e] [m_e] [m_p] [G] [g] [ly] gf Ky Gal dyn erg P St Mx G
    Oe Gb sb Lmb ph Ci R RAD REM cal_[15] cal_[20] cal_m cal_IT cal_th cal tex m[H2O] m[Hg]
    eq osm g% kat U [iU] [IU] B B[SPL] B[V] B[mV] B[uV] B[10.nV] B[W] B[kW] st mho bit By Bd
    Np
    """

_NON_METRIC_CODES = """
    10* 10^ [pi] % [ppth] [ppm] [ppb] [pptr] gon deg ' '' min h d a_t a_j a_g a wk mo_s mo_j
    mo_g mo [in_i] [ft_i] [yd_i] [mi_i] [fth_i] [nmi_i] [kn_i] [sin_i] [sft_i] [syd_i]
    [cin_i] [cft_i] [cyd_i] [bf_i] [cr_i] [mil_i] [cml_i] [hd_i] [ft_us] [yd_us] [in_us]
    [rd_us] [ch_us] [lk_us] [rch_us] [rlk_us] [fth_us] [fur_us] [mi_us] [acr_us] [srd_us]
    [smi_us] [sct] [twp] [mil_us] [in_br] [ft_br] [rd_br] [ch_br] [lk_br] [fth_br] [pc_br]
    [yd_br] [mi_br] [nmi_br] [kn_br] [acr_br] [gal_us] [bbl_us] [qt_us] [pt_us] [gil_us]
    [foz_us] [fdr_us] [min_us] [crd_us] [bu_us] [gal_wi] [pk_us] [dqt_us] [dpt_us] [tbs_us]
    [tsp_us] [cup_us] [foz_m] [cup_m] [tsp_m] [tbs_m] [gal_br] [pk_br] [bu_br] [qt_br] [pt_br]
    [gil_br] [foz_br] [fdr_br] [min_br] [gr] [lb_av] [oz_av] [dr_av] [scwt_av] [lcwt_av]
    [ston_av] [lton_av] [stone_av] [pwt_tr] [oz_tr] [lb_tr] [sc_ap] [dr_ap] [oz_ap] [lb_ap]
    [oz_m] [lne] [pnt] [pca] [pnt_pr] [pca_pr] [pied] [pouce] [ligne] [didot] [cicero] [degF]
    [degR] [degRe] [Cal] [Btu_39] [Btu_59] [Btu_60] [Btu_m] [Btu_IT] [Btu_th] [Btu] [HP]
    [in_i'H2O] [in_i'Hg] [PRU] [wood'U] [diop] [p'diop] %[slope] [mesh_i] [Ch] [drp]
    [hnsf'U] [MET] [hp'_X] [hp'_C] [hp'_M] [hp'_Q] [hp_X] [hp_C] [hp_M] [hp_Q] [kp_X] [kp_C]
    [kp_M] [kp_Q] [pH] [S] [HPF] [LPF] [arb'U] [USP'U] [GPL'U] [MPL'U] [APL'U] [beth'U]
    [anti'Xa'U] [todd'U] [dye'U] [smgy'U] [bdsk'U] [ka'U] [knk'U] [mclg'U] [tb'U] [CCID_50]
    [TCID_50] [EID_50] [PFU] [FFU] [CFU] [IR] [BAU] [AU] [Amb'a'1'U] [PNU] [Lf] [D'ag'U]
    [FEU] [ELU] [EU] circ sph [car_m] [car_Au] [smoot] [lbf_av] [den] [psi] [m/s2/Hz^(1/2)]
    [NTU] [FNU] [tex] [knk'U] [mclg'U]
    """

METRIC = frozenset(_METRIC_CODES.split())
NON_METRIC = frozenset(_NON_METRIC_CODES.split())
MAX_DEPTH = 16  # nested parentheses; real units use one or two
_EXPONENT = re.compile(r"^(.*?[^0-9+\-])([+-]?[0-9]+)$")
_DIGITS = re.compile(r"^[0-9]+$")
_ANNOTATION_CHARS = re.compile(r"^[!-z|~]*$")


@functools.lru_cache(maxsize=4096)
def problem(code: str) -> str | None:
    """None when `code` is valid UCUM syntax with known atoms, else why not (short)."""
    try:
        _Parser(code).parse()
    except _Invalid as invalid:
        return str(invalid)
    return None


class _Invalid(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.depth = 0

    def parse(self) -> None:
        if not self.text:
            raise _Invalid("an empty unit")
        if any(c.isspace() for c in self.text):
            raise _Invalid("a UCUM unit contains no spaces")
        self.term()
        if self.at != len(self.text):
            raise _Invalid(f"unexpected '{self.text[self.at]}' at character {self.at + 1}")

    def term(self) -> None:
        if self.peek() == "/":
            self.at += 1
        self.component()
        while self.peek() in (".", "/"):
            self.at += 1
            self.component()

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def component(self) -> None:
        char = self.peek()
        if char == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Invalid(f"parentheses nested deeper than {MAX_DEPTH}")
            self.at += 1
            self.term()
            self.depth -= 1
            if self.peek() != ")":
                raise _Invalid(f"a '(' without ')' at character {self.at + 1}")
            self.at += 1
            return
        if char == "{":
            self.annotation()
            return
        start = self.at
        depth = 0
        while self.at < len(self.text):
            c = self.text[self.at]
            if c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
            elif depth == 0 and c in "./(){":
                break
            self.at += 1
        symbol = self.text[start : self.at]
        if not symbol:
            raise _Invalid(f"a unit is missing at character {start + 1}")
        if not _DIGITS.match(symbol):
            _check_symbol(symbol, start)
        if self.peek() == "{":
            self.annotation()

    def annotation(self) -> None:
        end = self.text.find("}", self.at)
        if end < 0:
            raise _Invalid(f"a '{{' without '}}' at character {self.at + 1}")
        if not _ANNOTATION_CHARS.match(self.text[self.at + 1 : end]):
            raise _Invalid("an annotation holds characters UCUM does not allow")
        self.at = end + 1


def _check_symbol(symbol: str, start: int) -> None:
    if _known(symbol):
        return
    match = _EXPONENT.match(symbol)
    if match and _known(match.group(1)):
        return
    shown = symbol if len(symbol) <= 40 else symbol[:37] + "..."
    raise _Invalid(f"the unit '{shown}' is unknown at character {start + 1}")


def _known(symbol: str) -> bool:
    if symbol in METRIC or symbol in NON_METRIC:
        return True
    return any(symbol.startswith(p) and symbol[len(p) :] in METRIC for p in PREFIXES)
