"""make install answers OpenVINO's telemetry question, so the converter sends nothing.

Without an answer, importing openvino.tools.ovc (ultralytics' OpenVINO export does) counts as
consent and sends usage events from forked processes; offline those have hung a test run at exit.
"""


def test_the_converter_has_no_consent_to_send_usage_reports():
    from openvino.tools.ovc.telemetry_utils import init_ovc_telemetry

    assert init_ovc_telemetry("OpenVINO").consent is False
