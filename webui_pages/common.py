"""What every page gets: the API client, the translator and the form defaults; error display."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from webui_pages.api_client import ApiClient, ApiError
from webui_pages.api_types import UiDefaults
from webui_pages.i18n import Translator


@dataclass(frozen=True)
class UiContext:
    api: ApiClient
    t: Translator
    defaults: UiDefaults


def error_text(t: Translator, error: ApiError) -> str:
    """A readable line for an API failure: unreachable, a client error (4xx) or a server error (5xx)."""
    if error.status is None:
        return t("err_unreachable", detail=error.message)
    if error.status < 500:
        return t("err_client", status=error.status, detail=error.message)
    return t("err_server", status=error.status, detail=error.message)


def show_error(t: Translator, error: ApiError) -> None:
    st.error(error_text(t, error), icon=":material/error:")


@contextmanager
def shows_errors(t: Translator) -> Iterator[None]:
    """Show an API failure inside this block as a message on the page; the rest of the page still renders."""
    try:
        yield
    except ApiError as error:
        show_error(t, error)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def flash(message: str, kind: str = "success") -> None:
    """A message that survives the next st.rerun() (shown by `show_flash`)."""
    st.session_state["_flash"] = (kind, message)


SECTION_KEY = "kb_section"
_SECTION_NEXT = "_kb_section_next"


def show_section_next_run(section: str) -> None:
    """Open `section` of the KB page after the next rerun (a widget's value cannot change once it is drawn)."""
    st.session_state[_SECTION_NEXT] = section


def take_section_next_run() -> str | None:
    value = st.session_state.pop(_SECTION_NEXT, None)
    return None if value is None else str(value)


def show_flash() -> None:
    kind, message = st.session_state.pop("_flash", ("", ""))
    if message:
        (st.success if kind == "success" else st.warning)(message)


def search_mode_picker(
    ui: UiContext, *, inherited: str, key: str, label: str = "search_mode", current: str = ""
) -> str:
    """Pick a search mode; the first entry, returned as "", means `inherited` (the KB's or the global default)."""
    t = ui.t
    names = {"": t("search_mode_inherit", mode=t(f"search_mode_{inherited}"))}
    names.update({mode: t(f"search_mode_{mode}") for mode in ui.defaults.search_modes})
    options = list(names)
    index = options.index(current) if current in options else 0
    return str(st.selectbox(t(label), options, index=index, format_func=names.__getitem__, key=key) or "")
