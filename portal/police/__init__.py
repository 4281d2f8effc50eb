"""Police-assistance requests (handräckning, 43 § LVU / 45 § LVM; FR-F7): the jour asks the
police station commander for help to carry out a placement, after a legal-basis check against
the placement register and the person's advisories; the municipality's delegation matrix
(FR-A5) says whether the jour or the chair decides. Produced as a signed PDF for the police.
"""
