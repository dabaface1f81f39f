// WS-Security UsernameToken from plain JAX-WS (no Metro/WSIT, no CXF): a SOAPHandler
// writes the wsse:Security header on every outgoing message, the way Java developers
// add one to a wsimport-generated port. The body's username and password stay empty.
//
//   wsimport -keep -Xnocompile -s generated -p org.smsxml.isms 'http://127.0.0.1:8080/soap?wsdl'
//   javac -cp /usr/share/java/jaxws-rt.jar -d classes generated/org/smsxml/isms/*.java WsSecurityClient.java
//   java -cp /usr/share/java/jaxws-rt.jar:classes WsSecurityClient 'http://127.0.0.1:8080/soap?wsdl' 306912345678
//
// Prints one line per fact: text_id=..., digest_id=..., wrong_fault=..., wrong_code=...

import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Set;

import javax.xml.namespace.QName;
import javax.xml.soap.SOAPElement;
import javax.xml.soap.SOAPEnvelope;
import javax.xml.soap.SOAPHeader;
import javax.xml.soap.SOAPHeaderElement;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;

import org.smsxml.isms.Coding;
import org.smsxml.isms.Recipients;
import org.smsxml.isms.SmsFaultMessage;
import org.smsxml.isms.SmsPortType;
import org.smsxml.isms.SmsService;

public class WsSecurityClient {
    static final String WSSE =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSU =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String PROFILE =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";

    /** Adds a UsernameToken (PasswordText or PasswordDigest) to every request. */
    static class UsernameTokenHandler implements SOAPHandler<SOAPMessageContext> {
        final String username;
        final String secret;
        final boolean digest;

        UsernameTokenHandler(String username, String secret, boolean digest) {
            this.username = username;
            this.secret = secret;
            this.digest = digest;
        }

        @Override
        public boolean handleMessage(SOAPMessageContext context) {
            if (!(Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
                return true;
            }
            try {
                SOAPEnvelope envelope = context.getMessage().getSOAPPart().getEnvelope();
                SOAPHeader header = envelope.getHeader() != null ? envelope.getHeader() : envelope.addHeader();
                SOAPHeaderElement security = header.addHeaderElement(new QName(WSSE, "Security", "wsse"));
                security.setMustUnderstand(true);
                SOAPElement token = security.addChildElement("UsernameToken", "wsse");
                token.addChildElement("Username", "wsse").addTextNode(username);
                SOAPElement password = token.addChildElement("Password", "wsse");
                if (digest) {
                    // PasswordDigest = Base64(SHA-1(nonce + created + secret))
                    byte[] nonce = new byte[16];
                    new SecureRandom().nextBytes(nonce);
                    String created = Instant.now().truncatedTo(ChronoUnit.MILLIS).toString();
                    MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
                    sha1.update(nonce);
                    sha1.update(created.getBytes(StandardCharsets.UTF_8));
                    sha1.update(secret.getBytes(StandardCharsets.UTF_8));
                    password.setAttribute("Type", PROFILE + "#PasswordDigest");
                    password.addTextNode(Base64.getEncoder().encodeToString(sha1.digest()));
                    token.addChildElement("Nonce", "wsse")
                        .addTextNode(Base64.getEncoder().encodeToString(nonce));
                    token.addChildElement("Created", "wsu", WSU).addTextNode(created);
                } else {
                    password.setAttribute("Type", PROFILE + "#PasswordText");
                    password.addTextNode(secret);
                }
                context.getMessage().saveChanges();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
            return true;
        }

        @Override
        public Set<QName> getHeaders() {
            return Collections.singleton(new QName(WSSE, "Security"));
        }

        @Override
        public boolean handleFault(SOAPMessageContext context) {
            return true;
        }

        @Override
        public void close(MessageContext context) {
        }
    }

    static SmsPortType port(URL wsdl, String username, String secret, boolean digest) {
        SmsPortType sms = new SmsService(wsdl).getSmsPort();
        List<Handler> chain = Collections.singletonList(new UsernameTokenHandler(username, secret, digest));
        ((BindingProvider) sms).getBinding().setHandlerChain(chain);
        return sms;
    }

    public static void main(String[] args) throws Exception {
        URL wsdl = new URL(args.length > 0 ? args[0] : "http://127.0.0.1:8080/soap?wsdl");
        String mobile = args.length > 1 ? args[1] : "306912345678";
        String username = env("SMSXML_USERNAME", "demo");
        String secret = env("SMSXML_PASSWORD", "demo");
        Recipients to = new Recipients();
        to.getRecipients().add(mobile);

        String textId = port(wsdl, username, secret, false)
            .send("", "", "smsxml", to, "Hello over WS-Security", Coding.GSM, false, null, null);
        System.out.println("text_id=" + textId);
        String digestId = port(wsdl, username, secret, true)
            .send("", "", "smsxml", to, "Hello over WS-Security", Coding.GSM, false, null, null);
        System.out.println("digest_id=" + digestId);

        try {
            port(wsdl, username, "not-the-secret", true)
                .send("", "", "smsxml", to, "Hello", Coding.GSM, false, null, null);
            System.out.println("wrong_fault=none");
        } catch (SmsFaultMessage fault) {  // the contract's fault, whatever the faultcode
            System.out.println("wrong_fault=" + fault.getMessage());
            System.out.println("wrong_code=" + fault.getFaultInfo().getCode().value());
        }
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
