// The smsxml SOAP bridge from Java (JAX-WS): send, poll the status, handle a fault.
//
// The classes in org.smsxml.isms are generated from the served WSDL, not written by hand:
//   mkdir -p generated classes
//   wsimport -keep -Xnocompile -s generated -p org.smsxml.isms 'http://127.0.0.1:8080/soap?wsdl'
//   javac -cp /usr/share/java/jaxws-rt.jar -d classes generated/org/smsxml/isms/*.java Client.java
//   java -cp /usr/share/java/jaxws-rt.jar:classes Client 'http://127.0.0.1:8080/soap?wsdl' 306912345678
// (Debian 12: apt-get install jaxws default-jdk-headless; see docs/clients.md.)
//
// Prints one line per fact: id=..., status <mobile>=<status>, fault=..., code=...,
// sender_fault=..., sender_code=...

import java.net.URL;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.smsxml.isms.Coding;
import org.smsxml.isms.Recipients;
import org.smsxml.isms.SmsFaultMessage;
import org.smsxml.isms.SmsPortType;
import org.smsxml.isms.SmsService;
import org.smsxml.isms.Status;

public class Client {
    public static void main(String[] args) throws Exception {
        String wsdl = args.length > 0 ? args[0] : env("SMSXML_WSDL", "http://127.0.0.1:8080/soap?wsdl");
        List<String> mobiles = args.length > 1
            ? Arrays.asList(args).subList(1, args.length)
            : Arrays.asList("306912345678");
        String username = env("SMSXML_USERNAME", "demo");
        String password = env("SMSXML_PASSWORD", "demo");

        // The port's address is the one the WSDL publishes.
        SmsPortType sms = new SmsService(new URL(wsdl)).getSmsPort();

        Recipients to = new Recipients();
        to.getRecipients().addAll(mobiles);
        String id = sms.send(username, password, "smsxml", to, "Hello from Java",
                             Coding.GSM, false, null, null);
        System.out.println("id=" + id);

        // Queued, then Pending, then Delivered or Failed: poll, but not forever.
        Map<String, Status> statuses = new LinkedHashMap<>();
        long deadline = System.currentTimeMillis() + 60_000;
        List<String> waiting = new ArrayList<>(mobiles);
        while (!waiting.isEmpty() && System.currentTimeMillis() < deadline) {
            for (String mobile : new ArrayList<>(waiting)) {
                Status status = sms.query(username, password, id, mobile);
                statuses.put(mobile, status);
                if (status == Status.DELIVERED || status == Status.FAILED) {
                    waiting.remove(mobile);
                }
            }
            if (!waiting.isEmpty()) {
                Thread.sleep(250);
            }
        }
        for (Map.Entry<String, Status> entry : statuses.entrySet()) {
            System.out.println("status " + entry.getKey() + "=" + entry.getValue().value());
        }

        // Every refusal is a SOAP fault: the faultstring, and a stable code in its detail.
        try {
            sms.send(username, password + "-wrong", "smsxml", to, "Hello", Coding.GSM, false,
                     null, null);
            System.out.println("fault=none");
        } catch (SmsFaultMessage fault) {
            System.out.println("fault=" + fault.getMessage());
            System.out.println("code=" + fault.getFaultInfo().getCode().value());
        }

        // A sender the service refuses: the same exception, another code.
        try {
            sms.send(username, password, "Not a sender!", to, "Hello", Coding.GSM, false,
                     null, null);
            System.out.println("sender_fault=none");
        } catch (SmsFaultMessage fault) {
            System.out.println("sender_fault=" + fault.getMessage());
            System.out.println("sender_code=" + fault.getFaultInfo().getCode().value());
        }
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
