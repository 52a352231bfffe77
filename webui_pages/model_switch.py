"""The dialogue page's model switch: the chosen local model's state in the worker, and load / switch / unload."""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui_pages.common import UiContext, shows_errors


def _state_text(ui: UiContext, entry: dict[str, Any]) -> str:
    state = str(entry.get("state") or "")
    if state == "loading":
        return ui.t("model_state_loading", percent=round(100 * float(entry.get("progress") or 0)))
    if state == "failed":
        return ui.t("model_state_failed", error=entry.get("error") or "")
    return ui.t(f"model_state_{state}") if state in ("loaded", "unloaded") else ""


def model_switch(ui: UiContext, model: str) -> None:
    """Under the model picker: what the worker has done with `model`, and buttons to change that."""
    if not model:
        return
    with shows_errors(ui.t):
        states = ui.api.model_states()
        entry = states.get(model)
        if entry is None or entry.get("state") in (None, "online"):
            return  # an online model: nothing to load
        st.caption(_state_text(ui, entry))
        loaded = [name for name, other in states.items() if other.get("state") == "loaded" and name != model]
        state = entry.get("state")
        if state in ("unloaded", "failed"):
            label = ui.t("model_switch") if loaded else ui.t("model_load")
            if st.button(label, key="model_load"):
                if loaded:
                    ui.api.change_model(loaded[0], model)
                else:
                    ui.api.load_model(model)
                st.rerun()
        elif state == "loaded" and st.button(ui.t("model_unload"), key="model_unload"):
            ui.api.stop_model(model)
            st.rerun()
