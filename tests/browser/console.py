"""The console in a real browser (README, "Console"): Chromium from the distribution, driven
by Selenium through chromedriver, against a running cluster. An approver loads their key file,
sees the pending request, approves it, sees its state change, and finds the approval in the
audit trail; the screenshots taken on the way go to --shots.

Usage: console.py --url URL --key-file dpo2.key --request ID --approver dpo2
                  --requester-key-file analyst.key --shots DIR
"""

import argparse
import os
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]


def driver(profile):
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    service = Service(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--request", required=True)
    ap.add_argument("--approver", required=True)
    ap.add_argument("--requester-key-file", required=True)
    ap.add_argument("--shots", required=True)
    args = ap.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="kq-chromium-")
    d = driver(profile)
    wait = WebDriverWait(d, 30)
    shot = lambda name: d.save_screenshot(os.path.join(args.shots, name))
    try:
        d.get(args.url + "/ui/")
        wait.until(EC.presence_of_element_located((By.ID, "page-welcome")))
        # The node's Content-Security-Policy holds for the page (no third-party code).
        csp = d.execute_script(
            "return fetch('/ui/').then(r => r.headers.get('content-security-policy'))"
        )
        assert csp and "default-src 'none'" in csp and "script-src 'self'" in csp, csp
        shot("1-welcome.png")

        # Load the approver's key file: it is imported in the page, non-extractable.
        d.find_element(By.ID, "keyfile").send_keys(os.path.abspath(args.key_file))
        wait.until(EC.text_to_be_present_in_element((By.ID, "who"), f"Signed in as {args.approver}"))

        # The pending request is listed with its reason and labels.
        card = (By.CSS_SELECTOR, f".request[data-id='{args.request}'][data-state='pending']")
        wait.until(EC.presence_of_element_located(card))
        text = d.find_element(*card).text
        assert "court order" in text and "cam-7.mp4 frame" in text, text
        shot("2-pending-request.png")

        # Approve it with a comment.
        d.find_element(*card).find_element(By.CSS_SELECTOR, "textarea.comment").send_keys(
            "Court order 2026/117 checked"
        )
        d.find_element(*card).find_element(By.CSS_SELECTOR, "button.approve").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "You approved request"))

        # Its state changed: no longer pending; approved in the full list.
        Select(d.find_element(By.ID, "request-filter")).select_by_value("")
        approved = (By.CSS_SELECTOR, f".request[data-id='{args.request}'][data-state='approved']")
        wait.until(EC.presence_of_element_located(approved))
        assert args.approver in d.find_element(*approved).text
        shot("3-approved-request.png")

        # Having reviewed it, the approver is offered no second review.
        card_text = d.find_element(*approved).text
        assert "You have reviewed this request." in card_text, card_text
        assert not d.find_element(*approved).find_elements(By.CSS_SELECTOR, "button.approve")

        # The approval is in the audit trail, found with the filters.
        d.find_element(By.ID, "nav-audit").click()
        wait.until(lambda d: d.execute_script("return document.body.dataset.loaded") == "audit")
        d.find_element(By.ID, "f-action").send_keys("decrypt_request.approve")
        d.find_element(By.ID, "f-client").send_keys(args.approver)
        d.find_element(By.ID, "f-request").send_keys(args.request)
        d.find_element(By.ID, "audit-apply").click()
        # Wait for the filtered table (one row), then read it in one step.
        rows_js = "return Array.from(document.querySelectorAll('tr.audit-entry'), r => [r.dataset.action, r.textContent])"
        wait.until(lambda d: len(d.execute_script(rows_js)) == 1)
        [(action, text)] = d.execute_script(rows_js)
        assert action == "decrypt_request.approve", action
        assert args.request in text and "Court order 2026/117 checked" in text, text
        shot("5-audit-approval.png")

        # Cluster status and keys.
        d.find_element(By.ID, "nav-status").click()
        wait.until(lambda d: d.execute_script("return document.body.dataset.loaded") == "status")
        status = d.find_element(By.ID, "nodes").text
        assert status.count("yes") >= 2, status
        # This node and each answering peer say whether they are sealed.
        assert status.count("unsealed") >= 3, status
        shot("6-cluster-status.png")
        d.find_element(By.ID, "nav-keys").click()
        wait.until(lambda d: d.execute_script("return document.body.dataset.loaded") == "keys")
        assert "reid" in d.find_element(By.ID, "keys-body").text
        shot("7-keys.png")
        # The requester, signed in instead: no review buttons on its own request, and the API's
        # refusal of the audit trail (it is no auditor) shown in words.
        d.find_element(By.ID, "forget").click()
        d.find_element(By.ID, "keyfile").send_keys(os.path.abspath(args.requester_key_file))
        wait.until(EC.text_to_be_present_in_element((By.ID, "who"), "Signed in as analyst"))
        d.find_element(By.ID, "nav-requests").click()
        Select(d.find_element(By.ID, "request-filter")).select_by_value("")
        wait.until(EC.presence_of_element_located(approved))
        assert "You made this request" in d.find_element(*approved).text
        assert not d.find_element(*approved).find_elements(By.CSS_SELECTOR, "button.approve")
        d.find_element(By.ID, "nav-audit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "error"), "You are not allowed to do this."))
        error = d.find_element(By.ID, "error").text
        assert "may not read the audit trail" in error, error
        # Nothing the approver saw stays on screen for the next user.
        assert not d.find_elements(By.CSS_SELECTOR, "tr.audit-entry")
        shot("4-error-in-words.png")
        print("console: ok")
    except Exception:
        shot("failure.png")
        print(d.find_element(By.TAG_NAME, "body").text, file=sys.stderr)
        raise
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
