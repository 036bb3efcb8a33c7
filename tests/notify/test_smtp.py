"""SMTP_URL forms, for real: STARTTLS, SMTPS and AUTH against aiosmtpd with a
certificate made here (a test CA trusted with ``?ca_file=``), and the cases
where the transport must refuse to send."""

from __future__ import annotations

import datetime
import ipaddress
import smtplib
import ssl
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.mailbox import free_port
from tests.notify import outbox_row, queue_mail
from visma_idp.notify.outbox import deliver_due
from visma_idp.notify.smtp import SmtpSettings, SmtpTransport

USER, PASSWORD = "idp@example.com", "s3cret:with/odd@chars"
QUOTED = "idp%40example.com:s3cret%3Awith%2Fodd%40chars"


# -- parsing -----------------------------------------------------------------------


def test_url_forms(tmp_path):
    plain = SmtpSettings.from_url("smtp://mail.example.com:587")
    assert (plain.host, plain.port, plain.implicit_tls, plain.starttls) == ("mail.example.com", 587, False, "auto")
    assert (plain.username, plain.password, plain.ca_file) == (None, None, None)
    assert SmtpSettings.from_url("smtp://mail.example.com").port == 25

    implicit = SmtpSettings.from_url("smtps://mail.example.com")
    assert (implicit.port, implicit.implicit_tls, implicit.starttls) == (465, True, "never")

    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    login = SmtpSettings.from_url(f"smtp://{QUOTED}@mail.example.com:587?starttls=require&ca_file={ca}", 3)
    assert (login.username, login.password, login.starttls, login.ca_file, login.timeout) == (
        USER, PASSWORD, "require", str(ca), 3)
    assert PASSWORD not in repr(login) and PASSWORD not in login.describe()
    assert login.describe() == "smtp://idp@example.com@mail.example.com:587"
    assert SmtpSettings.from_url("smtp://relay?starttls=never").starttls == "never"


@pytest.mark.parametrize(("url", "says"), [
    ("http://mail.example.com", "smtp://"),
    ("smtp://", "no host"),
    ("smtp://mail.example.com?starttls=maybe", "starttls must be"),
    ("smtp://mail.example.com?verify=no", "unknown option 'verify'"),
    ("smtp://mail.example.com?ca_file=/nonexistent/ca.pem", "not a readable file"),
    ("smtp://mail.example.com:99999", "out of range"),
])
def test_bad_urls_are_refused_with_a_reason(url, says):
    with pytest.raises(ValueError, match=says):
        SmtpSettings.from_url(url)


# -- a test CA and a server certificate for 127.0.0.1 ----------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(ca.pem path, server SSLContext, an unrelated CA's path) made with `cryptography`."""
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)

    def make_ca(name):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = make_ca("visma_idp test CA")
    _other_key, other_cert = make_ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "other-ca.pem").write_bytes(other_cert.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return str(folder / "ca.pem"), context, str(folder / "other-ca.pem")


class _Recorder:
    """Keeps each message with what the session looked like when it came."""

    def __init__(self):
        self.received: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append({
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data if session.authenticated else None,
            "to": envelope.rcpt_tos,
            "data": envelope.content,
        })
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@pytest.fixture
def smtp_server():
    """Start an aiosmtpd server with the given options; all are stopped afterwards."""
    started: list[Controller] = []

    def start(**options) -> tuple[Controller, _Recorder]:
        recorder = _Recorder()
        controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return controller, recorder

    yield start
    for controller in started:
        controller.stop()


def _message(to="kari@example.no") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "no-reply@127.0.0.1", to, "test"
    message.set_content("hello")
    return message


def _send(url: str) -> SmtpTransport:
    with SmtpTransport(SmtpSettings.from_url(url, 5)) as transport:
        transport.send(_message())
    return transport


# -- STARTTLS ------------------------------------------------------------------------


def test_starttls_is_used_when_offered_and_the_certificate_is_verified(smtp_server, pki):
    ca_file, context, _other = pki
    controller, recorder = smtp_server(tls_context=context, require_starttls=True)
    transport = _send(f"smtp://127.0.0.1:{controller.port}?ca_file={ca_file}")
    assert transport.encrypted
    assert [r["tls"] for r in recorder.received] == [True]


def test_starttls_with_an_untrusted_certificate_sends_nothing(smtp_server, pki):
    _ca, context, other_ca = pki
    controller, recorder = smtp_server(tls_context=context)
    for url in (f"smtp://127.0.0.1:{controller.port}",  # the system's CAs do not know the test CA
                f"smtp://127.0.0.1:{controller.port}?ca_file={other_ca}"):
        with pytest.raises(ssl.SSLCertVerificationError):
            _send(url)
    assert recorder.received == []


def test_starttls_require_refuses_a_server_without_it(smtp_server):
    controller, recorder = smtp_server()
    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS"):
        _send(f"smtp://127.0.0.1:{controller.port}?starttls=require")
    assert recorder.received == []
    assert not _send(f"smtp://127.0.0.1:{controller.port}").encrypted  # auto: plain when not offered
    assert [r["tls"] for r in recorder.received] == [False]


def test_starttls_never_stays_plain_even_when_offered(smtp_server, pki):
    _ca, context, _other = pki
    controller, recorder = smtp_server(tls_context=context)
    assert not _send(f"smtp://127.0.0.1:{controller.port}?starttls=never").encrypted
    assert [r["tls"] for r in recorder.received] == [False]


# -- SMTPS -------------------------------------------------------------------------------


def test_smtps_is_tls_from_the_first_byte(smtp_server, pki):
    ca_file, context, other_ca = pki
    controller, recorder = smtp_server(ssl_context=context)
    assert _send(f"smtps://127.0.0.1:{controller.port}?ca_file={ca_file}").encrypted
    assert [r["tls"] for r in recorder.received] == [True]
    with pytest.raises(ssl.SSLCertVerificationError):
        _send(f"smtps://127.0.0.1:{controller.port}?ca_file={other_ca}")
    assert len(recorder.received) == 1


# -- AUTH -------------------------------------------------------------------------------------


def test_login_after_starttls(smtp_server, pki):
    ca_file, context, _other = pki
    controller, recorder = smtp_server(tls_context=context, require_starttls=True, auth_required=True,
                                       authenticator=_authenticator)
    _send(f"smtp://{QUOTED}@127.0.0.1:{controller.port}?ca_file={ca_file}")
    assert [(r["tls"], r["login"]) for r in recorder.received] == [(True, USER)]


def test_login_over_smtps_and_a_wrong_password(smtp_server, pki):
    ca_file, context, _other = pki
    # aiosmtpd counts only STARTTLS as TLS for AUTH: over SMTPS, allow AUTH outright
    controller, recorder = smtp_server(ssl_context=context, auth_require_tls=False, authenticator=_authenticator)
    _send(f"smtps://{QUOTED}@127.0.0.1:{controller.port}?ca_file={ca_file}")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(f"smtps://{USER.replace('@', '%40')}:wrong@127.0.0.1:{controller.port}?ca_file={ca_file}")
    assert [r["login"] for r in recorder.received] == [USER]


def test_the_password_is_never_sent_in_clear_unless_the_url_says_so(smtp_server):
    controller, recorder = smtp_server(auth_require_tls=False, authenticator=_authenticator)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="not sent in clear"):
        _send(f"smtp://{QUOTED}@127.0.0.1:{controller.port}")
    assert recorder.received == []
    _send(f"smtp://{QUOTED}@127.0.0.1:{controller.port}?starttls=never")  # a relay on loopback, by choice
    assert [(r["tls"], r["login"]) for r in recorder.received] == [(False, USER)]


# -- through the outbox --------------------------------------------------------------------------


def test_outbox_delivers_over_starttls_with_login(app, make_app, make_user, smtp_server, pki):
    ca_file, context, other_ca = pki
    controller, recorder = smtp_server(tls_context=context, require_starttls=True, auth_required=True,
                                       authenticator=_authenticator)
    uid = make_user(email="tls@example.no", locale="nb")
    untrusting = make_app(SMTP_URL=f"smtp://{QUOTED}@127.0.0.1:{controller.port}?ca_file={other_ca}")
    row_id = queue_mail(untrusting, uid)
    with untrusting.app_context():
        assert deliver_due(untrusting.extensions["visma_idp"]).retrying == 1
    assert "certificate verify failed" in outbox_row(untrusting, row_id).last_error
    assert recorder.received == []

    node = make_app(SMTP_URL=f"smtp://{QUOTED}@127.0.0.1:{controller.port}?starttls=require&ca_file={ca_file}")
    node.extensions["visma_idp"].clock.advance(30)
    with node.app_context():
        assert deliver_due(node.extensions["visma_idp"]).sent == 1
    assert [(r["tls"], r["login"], r["to"]) for r in recorder.received] == [(True, USER, ["tls@example.no"])]
    assert b"Content-Language: nb" in recorder.received[0]["data"]
