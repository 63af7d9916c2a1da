"""Keys in a PKCS#11 token (an HSM, a smart card, SoftHSM2), named by `pkcs11:` URIs.

token.py loads the module, finds the token and logs in; objects.py finds the key and rebuilds
its public key; signer.py signs with it; admin.py lists tokens and keys and makes new ones.
Every failure is a KeyFileError whose message names the token and the key, never the PIN.
"""
