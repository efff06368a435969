"""MR signal of brain tissue: tissue relaxation parameters and the spin-echo and inversion-recovery equations.

Signal models (Bernstein, King & Zhou, *Handbook of MRI Pulse Sequences*, 2004; TR much longer than TE):

* spin echo: ``S = PD * (1 - exp(-TR / T1)) * exp(-TE / T2)``
* inversion recovery (magnitude): ``S = PD * |1 - 2 exp(-TI / T1) + exp(-TR / T1)| * exp(-TE / T2)``

Tissue parameters are approximate 3 T literature values: grey- and white-matter T1 and T2 from Wansapura et al.
1999 (JMRI 9:531), proton densities from Tofts (ed.), *Quantitative MRI of the Brain*, 2003, CSF and white-matter
lesion values as commonly used in brain MR simulators (Kwan, Evans & Pike 1999, IEEE TMI 18:1085 for BrainWeb).

The extra-cerebral tissues of raw-looking sites (``HEAD_TISSUE_PARAMETERS``) are approximate 3 T values too:
subcutaneous fat and skeletal muscle T1 from Gold et al. 2004 (AJR 183:343) and Stanisz et al. 2005 (MRM 54:507),
muscle T2 between their 32 and 50 ms; fat T2 is the apparent T2 of fast spin echo, longer than its single-echo
value of about 70 ms because the echo train suppresses J-coupling (Henkelman et al. 1992, JMRI 2:533), which is why
fat is bright on clinical T2w. Cortical bone holds little mobile water and its T2* is about 0.4 ms (Du et al. 2010,
J Magn Reson 207:304), so it gives essentially no signal at clinical echo times; its T1 hardly matters. Fatty
(yellow) marrow of the diploe is taken as slightly less fatty than subcutaneous fat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "TissueParameters",
    "TISSUES",
    "HEAD_TISSUE_PARAMETERS",
    "SpinEcho",
    "InversionRecovery",
    "Sequence",
    "jitter_tissues",
]


@dataclass(frozen=True)
class TissueParameters:
    """Relaxation parameters of one tissue.

    Attributes:
        pd: proton density relative to water (CSF = 1).
        t1: longitudinal relaxation time in ms.
        t2: transverse relaxation time in ms.
    """

    pd: float
    t1: float
    t2: float


#: Label index -> tissue parameters (index 0, background, has no signal).
TISSUES: dict[str, TissueParameters] = {
    "csf": TissueParameters(pd=1.00, t1=4300.0, t2=2000.0),
    "grey_matter": TissueParameters(pd=0.80, t1=1331.0, t2=110.0),
    "white_matter": TissueParameters(pd=0.70, t1=832.0, t2=80.0),
    "lesion": TissueParameters(pd=0.82, t1=1400.0, t2=170.0),
}

#: Extra-cerebral tissues of raw-looking sites (``head.HEAD_TISSUES``); never part of the label map.
HEAD_TISSUE_PARAMETERS: dict[str, TissueParameters] = {
    "cortical_bone": TissueParameters(pd=0.05, t1=300.0, t2=1.0),
    "marrow": TissueParameters(pd=0.85, t1=400.0, t2=90.0),
    "fat": TissueParameters(pd=0.90, t1=380.0, t2=100.0),
    "scalp": TissueParameters(pd=0.70, t1=1400.0, t2=40.0),
}


@dataclass(frozen=True)
class SpinEcho:
    """A spin-echo acquisition (T1w with short TR and TE, T2w with long TR and TE, PD with long TR, short TE).

    Attributes:
        tr: repetition time in ms.
        te: echo time in ms.
    """

    tr: float
    te: float

    def signal(self, tissue: TissueParameters) -> float:
        """Steady-state spin-echo magnitude of ``tissue``."""
        return tissue.pd * (1.0 - np.exp(-self.tr / tissue.t1)) * np.exp(-self.te / tissue.t2)


@dataclass(frozen=True)
class InversionRecovery:
    """An inversion-recovery spin echo (FLAIR when TI nulls CSF).

    Attributes:
        tr: repetition time in ms.
        te: echo time in ms.
        ti: inversion time in ms.
    """

    tr: float
    te: float
    ti: float

    def signal(self, tissue: TissueParameters) -> float:
        """Magnitude inversion-recovery signal of ``tissue``."""
        longitudinal = 1.0 - 2.0 * np.exp(-self.ti / tissue.t1) + np.exp(-self.tr / tissue.t1)
        return tissue.pd * abs(longitudinal) * np.exp(-self.te / tissue.t2)


Sequence = SpinEcho | InversionRecovery


def jitter_tissues(
    rng: np.random.Generator,
    common: float = 0.07,
    individual: float = 0.03,
    tissues: dict[str, TissueParameters] | None = None,
) -> dict[str, TissueParameters]:
    """Per-subject tissue parameters, about 10 % from the literature values.

    Each of PD, T1 and T2 is scaled by a factor shared by all tissues (``1 +- common``; subjects and scanners shift
    relaxation times of all tissues together) times a factor of its own (``1 +- individual``). Keeping the
    independent part small keeps the contrast order of every sequence that of real scans.

    Args:
        rng: random generator of the subject.
        common: half-width of the uniform relative jitter shared by all tissues.
        individual: half-width of the uniform relative jitter of each tissue.
        tissues: the literature values to jitter (default: the brain's, ``TISSUES``).

    Returns:
        Tissue name -> jittered parameters.
    """
    shared = 1.0 + rng.uniform(-common, common, size=3)
    out = {}
    for name, tissue in (TISSUES if tissues is None else tissues).items():
        scale = shared * (1.0 + rng.uniform(-individual, individual, size=3))
        out[name] = replace(tissue, pd=tissue.pd * scale[0], t1=tissue.t1 * scale[1], t2=tissue.t2 * scale[2])
    return out
