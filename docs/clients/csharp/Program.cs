// The smsxml SOAP bridge from C# (.NET Framework or Mono): send, poll the status, handle a fault.
//
// SmsService.cs is generated from the served WSDL, not written by hand:
//   wsdl -namespace:Smsxml.Isms -out:SmsService.cs 'http://127.0.0.1:8080/soap?wsdl'
//   mcs -out:Client.exe -r:System.Web.Services Program.cs SmsService.cs
//   mono Client.exe 'http://127.0.0.1:8080/soap?wsdl' 306912345678
// (wsdl.exe and csc on Windows; Debian 12: apt-get install mono-devel; see docs/clients.md.)
//
// Prints one line per fact: id=..., status <mobile>=<status>, fault=..., code=...,
// sender_fault=..., sender_code=...

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Web.Services.Protocols;
using System.Xml;
using Smsxml.Isms;

class Program
{
    static int Main(string[] args)
    {
        string wsdl = args.Length > 0 ? args[0] : Env("SMSXML_WSDL", "http://127.0.0.1:8080/soap?wsdl");
        var mobiles = new List<string>(args);
        if (mobiles.Count > 0) mobiles.RemoveAt(0);
        if (mobiles.Count == 0) mobiles.Add("306912345678");
        string username = Env("SMSXML_USERNAME", "demo");
        string password = Env("SMSXML_PASSWORD", "demo");

        // The proxy remembers the address it was generated from; point it at ours.
        var sms = new SmsService { Url = wsdl.Split('?')[0], Timeout = 30000 };

        // "to" is the WSDL's Recipients type; wsdl.exe flattens it to string[].
        string id = sms.send(username, password, "smsxml", mobiles.ToArray(), "Hello from C#",
                             Coding.GSM, false, null, null);
        Console.WriteLine("id=" + id);

        // Queued, then Pending, then Delivered or Failed: poll, but not forever.
        var statuses = new Dictionary<string, Status>();
        var waiting = new List<string>(mobiles);
        var clock = Stopwatch.StartNew();
        while (waiting.Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            foreach (string mobile in waiting.ToArray())
            {
                Status status = sms.query(username, password, id, mobile);
                statuses[mobile] = status;
                if (status == Status.Delivered || status == Status.Failed) waiting.Remove(mobile);
            }
            if (waiting.Count > 0) Thread.Sleep(250);
        }
        foreach (string mobile in mobiles)
            Console.WriteLine("status " + mobile + "=" + statuses[mobile]);

        // Every refusal is a SOAP fault: the faultstring, and a stable code in its detail.
        try
        {
            sms.send(username, password + "-wrong", "smsxml", mobiles.ToArray(), "Hello",
                     Coding.GSM, false, null, null);
            Console.WriteLine("fault=none");
        }
        catch (SoapException fault)
        {
            Console.WriteLine("fault=" + fault.Message);
            Console.WriteLine("code=" + Code(fault));
        }

        // A sender the service refuses: the same kind of fault, another code.
        try
        {
            sms.send(username, password, "Not a sender!", mobiles.ToArray(), "Hello",
                     Coding.GSM, false, null, null);
            Console.WriteLine("sender_fault=none");
        }
        catch (SoapException fault)
        {
            Console.WriteLine("sender_fault=" + fault.Message);
            Console.WriteLine("sender_code=" + Code(fault));
        }
        return 0;
    }

    // The WSDL's elements are qualified: smsFault's code is in the service's namespace.
    static string Code(SoapException fault)
    {
        var ns = new XmlNamespaceManager(new NameTable());
        ns.AddNamespace("sms", "http://smsxml.org/isms/1");
        return fault.Detail?.SelectSingleNode("sms:smsFault/sms:code", ns)?.InnerText;
    }

    static string Env(string name, string fallback)
    {
        string value = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(value) ? fallback : value;
    }
}
