"""Reach a PKCS#11 token: load its module, find the token a URI names, log in with the PIN.

The module path is the URI's `module-path`, else `$COSIGN_PKCS11_MODULE_PATH` (as cosign). The
PIN is the URI's `pin-value`, else the file of `pin-source=file:PATH`, else
`$COSIGN_PKCS11_PIN`, else asked on the terminal when stdin is one; a token that needs no
login gets none. A PIN never appears in a message.
"""

from __future__ import annotations

import getpass
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pkcs11
from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11

from hangar import output
from hangar.errors import KeyFileError
from hangar.keys.passphrase import read_passphrase_file, stdin_is_terminal
from hangar.keys.uri import Pkcs11Uri

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Module

MODULE_PATH_ENV = "COSIGN_PKCS11_MODULE_PATH"
PIN_ENV = "COSIGN_PKCS11_PIN"
PIN_SOURCE_HINT = "put the PIN in a file readable only by you and use pin-source=file:PATH"

# python-pkcs11 initializes a module with C_Initialize(NULL), which tells the module that the
# application will not call it from several threads at once (PKCS#11 2.40 section 5.4): so
# every call into one module goes through its lock. Signing still leaves the event loop (it
# runs in a worker thread); SoftHSM2 signs a P-256 digest in about 0.2 ms, far below what a
# signature costs on the registry.
_module_locks: dict[str, threading.RLock] = {}
_warned_pin_value = False


def module_lock(path: str) -> threading.RLock:
    return _module_locks.setdefault(path, threading.RLock())


@dataclass(frozen=True)
class TokenInfo:
    """A token as `hangar pkcs11 list-tokens` prints it and URIs name it."""

    label: str
    serial: str
    slot_id: int
    manufacturer: str
    model: str
    login_required: bool

    def describe(self) -> str:
        return f'"{self.label}" (serial {self.serial}, slot-id {self.slot_id})'


def module_path(uri: Pkcs11Uri | None, given: str | None = None) -> str:
    """The module to load: --module-path, the URI's module-path, else $COSIGN_PKCS11_MODULE_PATH."""
    path = given or (uri.module_path if uri else None) or os.environ.get(MODULE_PATH_ENV)
    if not path:
        raise KeyFileError(
            f"no PKCS#11 module path: the URI has no module-path and ${MODULE_PATH_ENV} is not set",
            hint="add ?module-path=/path/to/module.so to the URI (SoftHSM2: "
            "/usr/lib/softhsm/libsofthsm2.so) or set " + MODULE_PATH_ENV,
        )
    return path


def load_module(path: str) -> Module:
    """The loaded module; KeyFileError when the file is missing or is not a PKCS#11 module."""
    if not os.path.isfile(path):
        raise KeyFileError(
            f"PKCS#11 module {path}: the file does not exist",
            hint="check module-path (SoftHSM2 installs /usr/lib/softhsm/libsofthsm2.so)",
        )
    try:
        with module_lock(path):
            return pkcs11.lib(path)
    except p11.PKCS11Error as exc:
        reason = str(exc).split(": ")[-1] or type(exc).__name__
        raise KeyFileError(
            f"PKCS#11 module {path} cannot be loaded: {reason}",
            hint="module-path must name the vendor's PKCS#11 library (.so) built for this machine",
        ) from None


def token_infos(lib: Module) -> list[tuple[TokenInfo, pkcs11.Token]]:
    """Every initialized token of the module, with what identifies it."""
    found = []
    with module_lock(lib.so):
        for slot in lib.get_slots(token_present=True):
            token = slot.get_token()
            if not token.flags & TokenFlag.TOKEN_INITIALIZED:
                continue
            info = TokenInfo(
                label=token.label,
                serial=token.serial.decode("ascii", "replace").strip(),
                slot_id=slot.slot_id,
                manufacturer=token.manufacturer_id,
                model=token.model,
                login_required=bool(token.flags & TokenFlag.LOGIN_REQUIRED),
            )
            found.append((info, token))
    return found


def _matches(info: TokenInfo, uri: Pkcs11Uri) -> bool:
    wanted = {
        "token": info.label,
        "serial": info.serial,
        "slot-id": str(info.slot_id),
        "manufacturer": info.manufacturer,
        "model": info.model,
    }
    return all(uri.text(name) in (None, value) for name, value in wanted.items())


def find_token(lib: Module, uri: Pkcs11Uri) -> tuple[TokenInfo, pkcs11.Token]:
    """The one token the URI names; KeyFileError naming the tokens present otherwise."""
    tokens = token_infos(lib)
    chosen = [(info, token) for info, token in tokens if _matches(info, uri)]
    wanted = ";".join(
        f"{name}={uri.text(name)}"
        for name in ("token", "serial", "slot-id", "manufacturer", "model")
        if uri.text(name) is not None
    )
    present = ", ".join(info.describe() for info, _ in tokens) or "none"
    if not chosen:
        raise KeyFileError(
            f"PKCS#11 token not found: none matches {wanted or 'the URI'} in module {lib.so}; "
            f"tokens present: {present}",
            hint="use token=LABEL of one of them (`hangar pkcs11 list-tokens` lists them)",
        )
    if len(chosen) > 1:
        raise KeyFileError(
            f"several PKCS#11 tokens match {wanted or 'the URI'}: "
            + ", ".join(info.describe() for info, _ in chosen),
            hint="name one with token=, serial= or slot-id=",
        )
    return chosen[0]


def _pin_from_source(source: str) -> str:
    """pin-source=file:PATH (or file:///PATH, or a plain path): the file's first line."""
    path = source
    if source.startswith("file://"):
        path = unquote(source[len("file://") :])
    elif source.startswith("file:"):
        path = unquote(source[len("file:") :])
    elif "://" in source or source.startswith("|"):
        raise KeyFileError(
            f"pin-source={source}: hangar reads a PIN from a file only",
            hint="use pin-source=file:PATH",
        )
    data = read_passphrase_file(path, flag="pin-source", what="PIN file")
    return data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")


def warn_pin_value(uri: Pkcs11Uri) -> None:
    """One warning per run for a PIN typed on the command line, where `ps` shows it."""
    global _warned_pin_value
    if uri.pin_value is None or _warned_pin_value:
        return
    _warned_pin_value = True
    output.warn(
        "the PKCS#11 URI holds pin-value: it stays in shell history, and other users of this "
        f"host can read it in the process list while hangar starts; {PIN_SOURCE_HINT}"
    )


def read_pin(uri: Pkcs11Uri | None, info: TokenInfo) -> str | None:
    """The user PIN by the order of this module's docstring; None for a token that needs no
    login; KeyFileError when it needs one and there is none to read."""
    if uri is not None and uri.pin_value is not None:
        return uri.pin_value
    if uri is not None and uri.pin_source is not None:
        return _pin_from_source(uri.pin_source)
    env = os.environ.get(PIN_ENV)
    if env is not None:
        return env
    if not info.login_required:
        return None
    if stdin_is_terminal():
        try:
            return getpass.getpass(f"Enter PIN for PKCS#11 token {info.label}: ")
        except EOFError:
            raise KeyFileError(
                f"no PIN entered for PKCS#11 token {info.describe()}",
                hint="type the PIN and press Enter",
            ) from None
    raise KeyFileError(
        f"no PIN for PKCS#11 token {info.describe()}: stdin is not a terminal, so hangar "
        "cannot ask",
        hint=f"{PIN_SOURCE_HINT}, or set ${PIN_ENV}",
    )


def open_session(
    lib: Module, token: pkcs11.Token, info: TokenInfo, pin: str | None, *, rw: bool = False
) -> pkcs11.Session:
    """A session logged in as the user (when a PIN is given); KeyFileError for a wrong or
    locked PIN."""
    where = f"PKCS#11 token {info.describe()}"
    if token.flags & TokenFlag.USER_PIN_LOCKED:
        raise _locked(where)
    try:
        with module_lock(lib.so):
            try:
                return token.open(user_pin=pin, rw=rw)
            except p11.UserAlreadyLoggedIn:
                # A login holds for every session of the process (PKCS#11): one is enough.
                return token.open(rw=rw)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        low = token.flags & (TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_COUNT_LOW)
        final = " (the token says the next wrong PIN may lock it)" if low else ""
        raise KeyFileError(
            f"{where}: the PIN is wrong{final}",
            hint="check pin-source/pin-value/$COSIGN_PKCS11_PIN; hangar tries a PIN once, "
            "so a retry loop cannot lock the token",
        ) from None
    except p11.PinLocked:
        raise _locked(where) from None
    except (p11.PinExpired, p11.UserPinNotInitialized) as exc:
        raise KeyFileError(
            f"{where}: the user PIN cannot log in ({type(exc).__name__})",
            hint="set or change the user PIN with the token's tools (softhsm2-util, "
            "pkcs11-tool --init-pin / --change-pin)",
        ) from None
    except p11.PKCS11Error as exc:
        raise KeyFileError(
            f"{where}: cannot open a session ({type(exc).__name__})",
            hint="check that the token is present and works (`hangar pkcs11 list-tokens`)",
        ) from None


def _locked(where: str) -> KeyFileError:
    return KeyFileError(
        f"{where}: the user PIN is locked (too many wrong PINs)",
        hint="unlock it with the security officer PIN (pkcs11-tool --init-pin --login "
        "--login-type so); hangar does not try more PINs",
    )
