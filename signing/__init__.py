"""Decision PDFs and their signatures: render (PDF/A-2b), certify (signer certificates from the
portal's signing CA), sign (PAdES-B-LTA), verify, and the development trust services.

A library with a small interface; it never imports `portal`, `auth` or `storage`. Modules:

    errors          the error tree (SigningError and subclasses)
    keys            SignerKey protocol; FileSignerKey (dev), Pkcs11SignerKey (HSM/SoftHSM2)
    pki             create_dev_pki(), SigningCA.issue_signer_certificate(), build_crl()
    trust_services  create_trust_services_app(), TrustServiceKeys: TSA, OCSP, CRLs (ASGI)
    render          render_pdfa(), warm_up()
    pades           sign_pdf(), renew_archival_timestamp(), warm_up()
    verify          verify_pdf() -> VerificationReport (.to_json() is the `jourpost verify` JSON)

See docs/signing.md for the signing model and what verification does and does not check.
"""
