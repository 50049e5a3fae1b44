"""Chat in the browser: the real agent on the real SmolLM2 model, streamed over SSE."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.browser.page import console_errors, llm_section, open_ui, wait

pytestmark = [pytest.mark.browser, pytest.mark.model]
ANSWER_WAIT_S = 120.0
EXPERT = "maths"
# Tab stops from the tab list to the message box: agent list, New conversation, message.
MAX_TABS = 6
# Records the tool events added to the last answer and the moment it turned final, each
# with the number of frames the page had rendered by then: a later frame means the user
# saw the earlier one on screen first (one network read handled in one task would put
# them all in the same frame).
WATCH_CHAT_JS = """
window.__chatSeen = [];
let frame = 0;
const tick = () => { frame += 1; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
new MutationObserver((records) => {
  for (const r of records) {
    if (r.type === "attributes" && r.attributeName === "data-final"
        && r.target.dataset.final === "true")
      window.__chatSeen.push({ what: "final", frame, final: true });
    for (const n of r.addedNodes || []) {
      if (n.nodeType === 1 && n.classList.contains("event")) {
        const li = n.closest("li");
        window.__chatSeen.push({ what: n.dataset.kind, frame, final: li.dataset.final === "true" });
      }
    }
  }
}).observe(document.getElementById("chat-log"),
           { childList: true, subtree: true, attributes: true, attributeFilter: ["data-final"] });
"""


def _answers(driver) -> list[dict]:
    return driver.execute_script("""
        return [...document.querySelectorAll('#chat-log li.assistant')].map(li => ({
          text: li.querySelector('.answer').textContent, final: li.dataset.final === 'true',
          tokens: Number(li.dataset.tokens || 0), error: li.dataset.error || null,
          events: [...li.querySelectorAll('.event')].map(e => e.dataset.kind)}));""")


async def test_chat_round_trip_streams_the_answer_and_keeps_the_conversation(
        ui_daemon, browser, models_dir) -> None:
    d = await ui_daemon(
        node={"models_dir": str(models_dir)}, llm=llm_section(models_dir, max_tokens=24),
        agent={"experts": {EXPERT: {"system_prompt": "You do arithmetic with the calculator.",
                                    "tools": ["calculator"], "tool_choice": "required"}}})
    driver = browser()
    open_ui(driver, d.url, "chat")
    agents = Select(driver.find_element(By.ID, "chat-agent"))
    wait(driver, lambda dr: len(agents.options) == 2, "the expert agents were never listed")
    assert [o.text for o in agents.options] == ["default", EXPERT]

    box = driver.find_element(By.ID, "chat-input")
    box.send_keys("Say hello to the kitchen.")
    driver.find_element(By.ID, "chat-send").click()
    first = wait(driver, lambda dr: (a := _answers(dr)) and (a[0]["final"] or a[0]["error"]) and a,
                 "no final answer", timeout=ANSWER_WAIT_S)[0]
    assert first["error"] is None, first
    assert first["tokens"] >= 2, f"the answer did not stream in: {first}"
    assert first["text"].strip(), "an empty answer"
    cid = driver.execute_script("return JSON.parse(sessionStorage.getItem('hybrid-agent.chat')).id")
    assert cid

    # A second turn with the expert continues the same conversation, all by keyboard: Tab
    # from the tab list reaches the message box, and Enter sends. The expert must use its
    # calculator, and the page shows the call and its result.
    agents.select_by_value(EXPERT)
    driver.execute_script(WATCH_CHAT_JS)
    driver.find_element(By.ID, "tab-chat").send_keys(Keys.TAB)
    path = [driver.switch_to.active_element.get_attribute("id")]
    while path[-1] != "chat-input" and len(path) < MAX_TABS:
        driver.switch_to.active_element.send_keys(Keys.TAB)
        path.append(driver.switch_to.active_element.get_attribute("id"))
    assert path[-1] == "chat-input", f"Tab never reached the message box: {path}"
    # (Not "What is 12 times 7?": the calculator intent answers that at once, before the LLM.)
    ActionChains(driver).send_keys("Work out the price of 12 boxes at 7 euros each.") \
        .send_keys(Keys.ENTER).perform()
    wait(driver, lambda dr: len(a := _answers(dr)) == 2 and (a[1]["final"] or a[1]["error"]),
         "no second answer", timeout=ANSWER_WAIT_S)
    second = _answers(driver)[1]
    assert second["error"] is None and second["text"].strip(), second
    assert second["events"][:2] == ["tool_call", "tool_result"], second
    assert driver.find_element(By.ID, "chat-input").get_attribute("value") == ""
    # The call was on screen while the answer was still being made: rendered in an earlier
    # frame than the final answer, with that answer not yet final.
    seen = driver.execute_script("return window.__chatSeen")
    call = next(s for s in seen if s["what"] == "tool_call")
    final = next(s for s in seen if s["what"] == "final")
    assert not call["final"] and call["frame"] < final["frame"], seen
    shown = driver.execute_script(
        "return [...document.querySelectorAll('#chat-log li.assistant')][1].textContent")
    assert "→ calculator(" in shown and "← calculator: " in shown, shown
    _, status = await d.get_json("/api/status")
    agent = status["components"]["agent"]
    assert agent["turns"] == 2 and agent["conversations"] == 1, agent

    # The conversation survives a reload of the page.
    driver.refresh()
    wait(driver, lambda dr: len(dr.find_elements(By.CSS_SELECTOR, "#chat-log li")) == 4,
         "the conversation was not kept across a reload")
    assert console_errors(driver) == []
