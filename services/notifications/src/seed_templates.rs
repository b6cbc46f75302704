//! The demo templates: every message type by SMS and email in French, Arabic and English, and
//! WhatsApp for the five messages people most need there. Written for a migrant reading on a basic
//! phone: short, concrete, what happened and what to do next. French and English SMS stay in the
//! GSM-7 alphabet (no ê, â, î, ô, û, ç, œ), so a part carries 153 characters instead of 67. The
//! in-app inbox shows the email's subject and body, so emails are short paragraphs too. The
//! identity code says the code, how long it is valid and not to share it: nothing else.

/// One demo template.
pub struct SeedTemplate {
    /// One of `templates::MESSAGE_TYPES`.
    pub message_type: &'static str,
    /// `sms`, `email` or `whatsapp`.
    pub channel: &'static str,
    /// `fr`, `ar`, `en`.
    pub locale: &'static str,
    /// Email only (may use variables); empty otherwise.
    pub subject: &'static str,
    /// The body, with the type's variables as `{{name}}`.
    pub body: &'static str,
    /// WhatsApp only: the approved template's name; empty otherwise.
    pub provider_template: &'static str,
}

const fn sms(message_type: &'static str, locale: &'static str, body: &'static str) -> SeedTemplate {
    SeedTemplate { message_type, channel: "sms", locale, subject: "", body, provider_template: "" }
}

const fn email(message_type: &'static str, locale: &'static str, subject: &'static str, body: &'static str) -> SeedTemplate {
    SeedTemplate { message_type, channel: "email", locale, subject, body, provider_template: "" }
}

const fn whatsapp(message_type: &'static str, locale: &'static str, provider_template: &'static str, body: &'static str) -> SeedTemplate {
    SeedTemplate { message_type, channel: "whatsapp", locale, subject: "", body, provider_template }
}

const OTP: &str = "identity.otp.requested";
const REGISTERED: &str = "intake.applicant.registered";
const SUBMITTED: &str = "intake.application.submitted";
const ACCEPTED: &str = "intake.application.accepted";
const WAITLISTED: &str = "intake.application.waitlisted";
const REJECTED: &str = "intake.application.rejected";
const AWARDED: &str = "grants.award.created";
const PAYABLE: &str = "grants.tranche.payable";
const PAID: &str = "grants.disbursement.paid";
const FAILED: &str = "grants.disbursement.failed";
const SCHEDULED: &str = "coaching.session.scheduled";
const RESCHEDULED: &str = "coaching.session.rescheduled";
const REMINDER: &str = "coaching.session.reminder";
const CANCELLED: &str = "coaching.session.cancelled";
const MILESTONE: &str = "coaching.milestone.verified";

/// The demo templates.
pub const SEED_TEMPLATES: &[SeedTemplate] = &[
    // The one-time code: the code, its validity, do not share it. Nothing else.
    sms(OTP, "fr", "Votre code WORK4LIFE : {{code}}. Il est valable {{minutes}} minutes. Ne le partagez avec personne."),
    sms(OTP, "ar", "رمزكم في WORK4LIFE هو {{code}}، صالح لمدة {{minutes}} دقائق. لا تشاركوه مع أحد."),
    sms(OTP, "en", "Your WORK4LIFE code: {{code}}. It is valid for {{minutes}} minutes. Do not share it with anyone."),
    email(
        OTP,
        "fr",
        "Votre code WORK4LIFE",
        "Votre code WORK4LIFE : {{code}}\n\nIl est valable {{minutes}} minutes.\nNe le partagez avec personne.",
    ),
    email(OTP, "ar", "رمزكم في WORK4LIFE", "رمزكم في WORK4LIFE: {{code}}\n\nهذا الرمز صالح لمدة {{minutes}} دقائق.\nلا تشاركوه مع أحد."),
    email(
        OTP,
        "en",
        "Your WORK4LIFE code",
        "Your WORK4LIFE code: {{code}}\n\nIt is valid for {{minutes}} minutes.\nDo not share it with anyone.",
    ),
    // Registered in the person registry: the next step is an application.
    sms(
        REGISTERED,
        "fr",
        "Bonjour {{given_name}}, votre inscription à WORK4LIFE est enregistrée. Prochaine étape : déposer votre candidature. \
         Votre bureau WORK4LIFE peut vous aider.",
    ),
    sms(
        REGISTERED,
        "ar",
        "مرحبا {{given_name}}، تم تسجيلكم في برنامج WORK4LIFE. الخطوة التالية: تقديم طلب ترشيحكم. للمساعدة، مكتب WORK4LIFE رهن إشارتكم.",
    ),
    sms(
        REGISTERED,
        "en",
        "Hello {{given_name}}, you are now registered with WORK4LIFE. Next step: submit your application. \
         Your WORK4LIFE office can help you.",
    ),
    email(
        REGISTERED,
        "fr",
        "Bienvenue dans le programme WORK4LIFE",
        "Bonjour {{given_name}},\n\n\
         Votre inscription au programme WORK4LIFE est bien enregistrée.\n\n\
         Prochaine étape : déposer votre candidature à un appel ouvert. Notre équipe peut vous aider à la préparer \
         dans un bureau WORK4LIFE (Tanger, Rabat-Salé, Oujda ou Béni Mellal).\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        REGISTERED,
        "ar",
        "مرحبا بكم في برنامج WORK4LIFE",
        "مرحبا {{given_name}}،\n\n\
         تم تسجيلكم بنجاح في برنامج WORK4LIFE.\n\n\
         الخطوة التالية: تقديم طلب ترشيحكم عند فتح باب الترشيح. يمكن لفريقنا مساعدتكم في إعداده \
         بأحد مكاتب WORK4LIFE (طنجة، الرباط-سلا، وجدة أو بني ملال).\n\n\
         فريق WORK4LIFE",
    ),
    email(
        REGISTERED,
        "en",
        "Welcome to WORK4LIFE",
        "Hello {{given_name}},\n\n\
         You are now registered with the WORK4LIFE program.\n\n\
         Next step: submit your application to an open call. Our team can help you prepare it \
         at a WORK4LIFE office (Tanger, Rabat-Salé, Oujda or Béni Mellal).\n\n\
         The WORK4LIFE team",
    ),
    // An application submitted: keep the reference, the decision will come.
    sms(
        SUBMITTED,
        "fr",
        "Bonjour {{given_name}}, votre candidature WORK4LIFE {{reference}} est bien déposée. \
         Nous l'étudions et vous enverrons la décision par message.",
    ),
    sms(SUBMITTED, "ar", "مرحبا {{given_name}}، تم إيداع طلبكم في WORK4LIFE تحت المرجع {{reference}}. سندرسه ونخبركم بالقرار برسالة."),
    sms(
        SUBMITTED,
        "en",
        "Hello {{given_name}}, your WORK4LIFE application {{reference}} has been submitted. \
         We are reviewing it and will send you the decision by message.",
    ),
    email(
        SUBMITTED,
        "fr",
        "Candidature {{reference}} bien déposée",
        "Bonjour {{given_name}},\n\n\
         Votre candidature au programme WORK4LIFE est bien déposée.\n\
         Référence : {{reference}}\n\n\
         Nous l'étudions et vous enverrons la décision par message. Gardez cette référence : \
         on vous la demandera si vous nous contactez.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        SUBMITTED,
        "ar",
        "تم إيداع طلبكم {{reference}}",
        "مرحبا {{given_name}}،\n\n\
         تم إيداع طلبكم في برنامج WORK4LIFE بنجاح.\n\
         المرجع: {{reference}}\n\n\
         سندرس طلبكم ونخبركم بالقرار برسالة. احتفظوا بهذا المرجع، فقد يطلب منكم عند التواصل معنا.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        SUBMITTED,
        "en",
        "Application {{reference}} submitted",
        "Hello {{given_name}},\n\n\
         Your application to the WORK4LIFE program has been submitted.\n\
         Reference: {{reference}}\n\n\
         We are reviewing it and will send you the decision by message. Keep this reference: \
         we will ask for it if you contact us.\n\n\
         The WORK4LIFE team",
    ),
    // Accepted: the office calls for the next steps (award, coaching).
    sms(
        ACCEPTED,
        "fr",
        "Bonne nouvelle {{given_name}} : votre candidature WORK4LIFE {{reference}} est acceptée ! \
         Votre bureau WORK4LIFE vous appellera pour les prochaines étapes.",
    ),
    sms(
        ACCEPTED,
        "ar",
        "تهانينا {{given_name}}! تم قبول طلبكم رقم {{reference}} في برنامج WORK4LIFE. سيتصل بكم مكتب WORK4LIFE لتحديد الخطوات التالية.",
    ),
    sms(
        ACCEPTED,
        "en",
        "Good news {{given_name}}: your WORK4LIFE application {{reference}} is accepted! \
         Your WORK4LIFE office will call you about the next steps.",
    ),
    email(
        ACCEPTED,
        "fr",
        "Votre candidature WORK4LIFE est acceptée",
        "Bonjour {{given_name}},\n\n\
         Bonne nouvelle : votre candidature {{reference}} au programme WORK4LIFE est acceptée.\n\
         Avis du comité : {{reason}}\n\n\
         Prochaine étape : votre bureau WORK4LIFE vous appellera pour préparer votre aide et votre accompagnement. \
         Vous n'avez rien à faire d'ici là.\n\n\
         Félicitations !\n\
         L'équipe WORK4LIFE",
    ),
    email(
        ACCEPTED,
        "ar",
        "تم قبول طلبكم في WORK4LIFE",
        "مرحبا {{given_name}}،\n\n\
         يسعدنا إبلاغكم بقبول طلبكم رقم {{reference}} في برنامج WORK4LIFE.\n\
         رأي اللجنة: {{reason}}\n\n\
         الخطوة التالية: سيتصل بكم مكتب WORK4LIFE لتحضير الدعم وبرنامج المواكبة. لا حاجة للقيام بأي إجراء قبل ذلك.\n\n\
         تهانينا!\n\
         فريق WORK4LIFE",
    ),
    email(
        ACCEPTED,
        "en",
        "Your WORK4LIFE application is accepted",
        "Hello {{given_name}},\n\n\
         Good news: your application {{reference}} to the WORK4LIFE program is accepted.\n\
         The committee's note: {{reason}}\n\n\
         Next step: your WORK4LIFE office will call you to prepare your support and coaching. \
         You do not need to do anything until then.\n\n\
         Congratulations!\n\
         The WORK4LIFE team",
    ),
    whatsapp(
        ACCEPTED,
        "fr",
        "w4l_application_accepted_v1",
        "Bonne nouvelle {{given_name}} : votre candidature {{reference}} au programme WORK4LIFE est acceptée !\n\
         Avis du comité : {{reason}}\n\
         Votre bureau WORK4LIFE vous appellera pour les prochaines étapes. Vous n'avez rien à faire d'ici là.",
    ),
    whatsapp(
        ACCEPTED,
        "ar",
        "w4l_application_accepted_v1",
        "تهانينا {{given_name}}! تم قبول طلبكم رقم {{reference}} في برنامج WORK4LIFE.\n\
         رأي اللجنة: {{reason}}\n\
         سيتصل بكم مكتب WORK4LIFE لتحديد الخطوات التالية. لا حاجة للقيام بأي إجراء قبل ذلك.",
    ),
    whatsapp(
        ACCEPTED,
        "en",
        "w4l_application_accepted_v1",
        "Good news {{given_name}}: your application {{reference}} to the WORK4LIFE program is accepted!\n\
         The committee's note: {{reason}}\n\
         Your WORK4LIFE office will call you about the next steps. You do not need to do anything until then.",
    ),
    // Waitlisted: still in, nothing to do, we write when a place opens.
    sms(
        WAITLISTED,
        "fr",
        "Bonjour {{given_name}}, votre candidature WORK4LIFE {{reference}} est sur liste d'attente. Motif : {{reason}}. \
         Nous vous écrirons dès qu'une place se libère.",
    ),
    sms(
        WAITLISTED,
        "ar",
        "مرحبا {{given_name}}، طلبكم رقم {{reference}} في WORK4LIFE مسجل في لائحة الانتظار. السبب: {{reason}}. سنراسلكم فور توفر مكان.",
    ),
    sms(
        WAITLISTED,
        "en",
        "Hello {{given_name}}, your WORK4LIFE application {{reference}} is on the waiting list. Reason: {{reason}}. \
         We will write to you as soon as a place opens.",
    ),
    email(
        WAITLISTED,
        "fr",
        "Candidature {{reference}} sur liste d'attente",
        "Bonjour {{given_name}},\n\n\
         Votre candidature {{reference}} au programme WORK4LIFE est sur liste d'attente.\n\
         Motif : {{reason}}\n\n\
         Votre candidature reste valable : si une place se libère, nous vous écrirons aussitôt. \
         Vous n'avez rien à faire pour l'instant.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        WAITLISTED,
        "ar",
        "طلبكم {{reference}} في لائحة الانتظار",
        "مرحبا {{given_name}}،\n\n\
         طلبكم رقم {{reference}} في برنامج WORK4LIFE مسجل في لائحة الانتظار.\n\
         السبب: {{reason}}\n\n\
         طلبكم لا يزال قائما: إذا توفر مكان، سنراسلكم فورا. لا حاجة للقيام بأي إجراء الآن.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        WAITLISTED,
        "en",
        "Application {{reference}} on the waiting list",
        "Hello {{given_name}},\n\n\
         Your application {{reference}} to the WORK4LIFE program is on the waiting list.\n\
         Reason: {{reason}}\n\n\
         Your application stays open: if a place becomes free, we will write to you at once. \
         You do not need to do anything for now.\n\n\
         The WORK4LIFE team",
    ),
    // Rejected: the reason, and the office to talk it through.
    sms(
        REJECTED,
        "fr",
        "Bonjour {{given_name}}, nous sommes désolés : votre candidature WORK4LIFE {{reference}} n'a pas été retenue. \
         Motif : {{reason}}. Votre bureau WORK4LIFE peut vous conseiller.",
    ),
    sms(
        REJECTED,
        "ar",
        "مرحبا {{given_name}}، نأسف لإبلاغكم بعدم قبول طلبكم رقم {{reference}} في WORK4LIFE. السبب: {{reason}}. مكتب WORK4LIFE رهن إشارتكم.",
    ),
    sms(
        REJECTED,
        "en",
        "Hello {{given_name}}, we are sorry: your WORK4LIFE application {{reference}} was not selected. \
         Reason: {{reason}}. Your WORK4LIFE office can advise you.",
    ),
    email(
        REJECTED,
        "fr",
        "Décision sur votre candidature {{reference}}",
        "Bonjour {{given_name}},\n\n\
         Nous sommes désolés : votre candidature {{reference}} au programme WORK4LIFE n'a pas été retenue.\n\
         Motif : {{reason}}\n\n\
         Vous pourrez candidater à nouveau lors d'un prochain appel. Votre bureau WORK4LIFE peut vous expliquer \
         cette décision et vous aider à préparer la suite.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        REJECTED,
        "ar",
        "قرار بشأن طلبكم {{reference}}",
        "مرحبا {{given_name}}،\n\n\
         نأسف لإبلاغكم بعدم قبول طلبكم رقم {{reference}} في برنامج WORK4LIFE.\n\
         السبب: {{reason}}\n\n\
         يمكنكم الترشح من جديد عند فتح باب الترشيح مرة أخرى. مكتب WORK4LIFE رهن إشارتكم لشرح هذا القرار \
         ومساعدتكم على التحضير للخطوة القادمة.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        REJECTED,
        "en",
        "Decision on your application {{reference}}",
        "Hello {{given_name}},\n\n\
         We are sorry: your application {{reference}} to the WORK4LIFE program was not selected.\n\
         Reason: {{reason}}\n\n\
         You can apply again to a future call. Your WORK4LIFE office can explain this decision \
         and help you prepare what comes next.\n\n\
         The WORK4LIFE team",
    ),
    // An award (start-up grant or work bursary): paid in several instalments.
    sms(
        AWARDED,
        "fr",
        "Bonjour {{given_name}}, WORK4LIFE vous accorde une aide de {{amount}}, versée en plusieurs fois. \
         Votre bureau WORK4LIFE vous expliquera le calendrier.",
    ),
    sms(
        AWARDED,
        "ar",
        "مرحبا {{given_name}}، تم منحكم دعما من WORK4LIFE بقيمة {{amount}}، يصرف على دفعات. سيشرح لكم مكتب WORK4LIFE مواعيد الصرف.",
    ),
    sms(
        AWARDED,
        "en",
        "Hello {{given_name}}, WORK4LIFE has awarded you {{amount}}, paid in several instalments. \
         Your WORK4LIFE office will explain the schedule.",
    ),
    email(
        AWARDED,
        "fr",
        "Une aide WORK4LIFE de {{amount}} vous est accordée",
        "Bonjour {{given_name}},\n\n\
         Le programme WORK4LIFE vous accorde une aide de {{amount}}.\n\n\
         Elle sera versée en plusieurs fois : par tranches, à chaque étape validée avec votre coach, ou chaque mois \
         pour une bourse de travail. Nous vous préviendrons à chaque versement.\n\n\
         Prochaine étape : votre bureau WORK4LIFE vous expliquera le calendrier et vérifiera avec vous \
         vos coordonnées de paiement.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        AWARDED,
        "ar",
        "تم منحكم دعما بقيمة {{amount}}",
        "مرحبا {{given_name}}،\n\n\
         تم منحكم دعما من برنامج WORK4LIFE بقيمة {{amount}}.\n\n\
         يصرف هذا الدعم على دفعات: عند كل مرحلة يصادق عليها مؤطركم، أو كل شهر بالنسبة لمنحة العمل. \
         سنخبركم عند كل تحويل.\n\n\
         الخطوة التالية: سيشرح لكم مكتب WORK4LIFE مواعيد الصرف ويتحقق معكم من بيانات الأداء.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        AWARDED,
        "en",
        "You have been awarded {{amount}} by WORK4LIFE",
        "Hello {{given_name}},\n\n\
         The WORK4LIFE program has awarded you support of {{amount}}.\n\n\
         It will be paid in several instalments: one for each step you complete with your coach, or every month \
         for a work bursary. We will tell you each time a payment is made.\n\n\
         Next step: your WORK4LIFE office will explain the schedule and check your payment details with you.\n\n\
         The WORK4LIFE team",
    ),
    // A tranche is payable: the payment is being prepared.
    sms(
        PAYABLE,
        "fr",
        "Bonjour {{given_name}}, la tranche {{tranche}} de votre aide WORK4LIFE ({{amount}}) est débloquée. \
         Paiement en préparation : nous vous préviendrons dès son envoi.",
    ),
    sms(
        PAYABLE,
        "ar",
        "مرحبا {{given_name}}، الدفعة رقم {{tranche}} من دعمكم في WORK4LIFE، بقيمة {{amount}}، أصبحت جاهزة للصرف. سنخبركم فور تحويلها.",
    ),
    sms(
        PAYABLE,
        "en",
        "Hello {{given_name}}, instalment {{tranche}} of your WORK4LIFE grant ({{amount}}) is released. \
         The payment is being prepared: we will tell you when it is sent.",
    ),
    email(
        PAYABLE,
        "fr",
        "Tranche {{tranche}} de votre aide débloquée",
        "Bonjour {{given_name}},\n\n\
         La tranche {{tranche}} de votre aide WORK4LIFE est débloquée.\n\
         Montant : {{amount}}\n\n\
         Le paiement est en préparation. Nous vous préviendrons dès que l'argent sera envoyé. \
         Vous n'avez rien à faire.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        PAYABLE,
        "ar",
        "الدفعة {{tranche}} من دعمكم جاهزة للصرف",
        "مرحبا {{given_name}}،\n\n\
         الدفعة رقم {{tranche}} من دعمكم في برنامج WORK4LIFE أصبحت جاهزة للصرف.\n\
         المبلغ: {{amount}}\n\n\
         نقوم الآن بتحضير التحويل، وسنخبركم فور إرسال المبلغ. لا حاجة للقيام بأي إجراء.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        PAYABLE,
        "en",
        "Instalment {{tranche}} of your grant is released",
        "Hello {{given_name}},\n\n\
         Instalment {{tranche}} of your WORK4LIFE grant is released.\n\
         Amount: {{amount}}\n\n\
         The payment is being prepared. We will tell you as soon as the money is sent. \
         You do not need to do anything.\n\n\
         The WORK4LIFE team",
    ),
    whatsapp(
        PAYABLE,
        "fr",
        "w4l_tranche_payable_v1",
        "Bonjour {{given_name}}, la tranche {{tranche}} de votre aide WORK4LIFE est débloquée.\n\
         Montant : {{amount}}\n\
         Le paiement est en préparation : nous vous préviendrons dès que l'argent sera envoyé.",
    ),
    whatsapp(
        PAYABLE,
        "ar",
        "w4l_tranche_payable_v1",
        "مرحبا {{given_name}}، الدفعة رقم {{tranche}} من دعمكم في WORK4LIFE أصبحت جاهزة للصرف.\n\
         المبلغ: {{amount}}\n\
         نقوم الآن بتحضير التحويل، وسنخبركم فور إرسال المبلغ.",
    ),
    whatsapp(
        PAYABLE,
        "en",
        "w4l_tranche_payable_v1",
        "Hello {{given_name}}, instalment {{tranche}} of your WORK4LIFE grant is released.\n\
         Amount: {{amount}}\n\
         The payment is being prepared: we will tell you as soon as the money is sent.",
    ),
    // Paid: the reference, and what to do if the money does not arrive.
    sms(
        PAID,
        "fr",
        "Bonjour {{given_name}}, WORK4LIFE vous a versé {{amount}}, référence {{reference}}. \
         Pas arrivé sous 5 jours ? Contactez votre bureau avec cette référence.",
    ),
    sms(
        PAID,
        "ar",
        "مرحبا {{given_name}}، حولنا إليكم {{amount}} من WORK4LIFE، المرجع {{reference}}. إن لم يصلكم خلال 5 أيام، اتصلوا بمكتبكم مع ذكر المرجع.",
    ),
    sms(
        PAID,
        "en",
        "Hello {{given_name}}, WORK4LIFE has paid you {{amount}}, reference {{reference}}. \
         Not arrived within 5 days? Contact your office with this reference.",
    ),
    email(
        PAID,
        "fr",
        "WORK4LIFE vous a versé {{amount}}",
        "Bonjour {{given_name}},\n\n\
         Le programme WORK4LIFE vous a versé {{amount}}.\n\
         Référence du paiement : {{reference}}\n\n\
         Selon votre banque ou votre service de paiement mobile, l'argent peut mettre quelques jours à arriver. \
         S'il n'est pas arrivé sous 5 jours, contactez votre bureau WORK4LIFE en donnant cette référence.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        PAID,
        "ar",
        "تم تحويل {{amount}} إليكم",
        "مرحبا {{given_name}}،\n\n\
         قام برنامج WORK4LIFE بتحويل مبلغ {{amount}} إليكم.\n\
         مرجع العملية: {{reference}}\n\n\
         قد يستغرق وصول المبلغ بضعة أيام حسب البنك أو خدمة الأداء عبر الهاتف. إذا لم يصلكم خلال 5 أيام، \
         اتصلوا بمكتب WORK4LIFE مع ذكر هذا المرجع.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        PAID,
        "en",
        "WORK4LIFE has paid you {{amount}}",
        "Hello {{given_name}},\n\n\
         The WORK4LIFE program has paid you {{amount}}.\n\
         Payment reference: {{reference}}\n\n\
         Depending on your bank or mobile money service, the money can take a few days to arrive. \
         If it has not arrived within 5 days, contact your WORK4LIFE office and give this reference.\n\n\
         The WORK4LIFE team",
    ),
    whatsapp(
        PAID,
        "fr",
        "w4l_disbursement_paid_v1",
        "Bonjour {{given_name}}, WORK4LIFE vous a versé {{amount}}.\n\
         Référence : {{reference}}\n\
         L'argent peut mettre quelques jours à arriver. S'il n'est pas arrivé sous 5 jours, \
         contactez votre bureau WORK4LIFE avec cette référence.",
    ),
    whatsapp(
        PAID,
        "ar",
        "w4l_disbursement_paid_v1",
        "مرحبا {{given_name}}، قام برنامج WORK4LIFE بتحويل مبلغ {{amount}} إليكم.\n\
         المرجع: {{reference}}\n\
         قد يستغرق وصول المبلغ بضعة أيام. إذا لم يصلكم خلال 5 أيام، اتصلوا بمكتب WORK4LIFE مع ذكر هذا المرجع.",
    ),
    whatsapp(
        PAID,
        "en",
        "w4l_disbursement_paid_v1",
        "Hello {{given_name}}, WORK4LIFE has paid you {{amount}}.\n\
         Reference: {{reference}}\n\
         The money can take a few days to arrive. If it has not arrived within 5 days, \
         contact your WORK4LIFE office with this reference.",
    ),
    // A payment failed: the money is not lost; fix the payment details with the office.
    sms(
        FAILED,
        "fr",
        "Bonjour {{given_name}}, le versement WORK4LIFE de {{amount}} n'a pas abouti. Motif : {{reason}}. \
         Votre argent n'est pas perdu : contactez votre bureau WORK4LIFE pour corriger vos coordonnées.",
    ),
    sms(
        FAILED,
        "ar",
        "مرحبا {{given_name}}، تعذر تحويل مبلغ {{amount}} من WORK4LIFE. السبب: {{reason}}. المبلغ محفوظ لكم: اتصلوا بمكتب WORK4LIFE لتصحيح بيانات الأداء.",
    ),
    sms(
        FAILED,
        "en",
        "Hello {{given_name}}, the WORK4LIFE payment of {{amount}} did not go through. Reason: {{reason}}. \
         Your money is not lost: contact your WORK4LIFE office to fix your payment details.",
    ),
    email(
        FAILED,
        "fr",
        "Votre versement de {{amount}} n'a pas abouti",
        "Bonjour {{given_name}},\n\n\
         Le versement WORK4LIFE de {{amount}} n'a pas abouti.\n\
         Motif : {{reason}}\n\n\
         Votre argent n'est pas perdu. Prochaine étape : contactez votre bureau WORK4LIFE ou passez-y pour corriger \
         vos coordonnées de paiement ; nous referons ensuite le versement.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        FAILED,
        "ar",
        "تعذر تحويل مبلغ {{amount}}",
        "مرحبا {{given_name}}،\n\n\
         تعذر تحويل مبلغ {{amount}} من برنامج WORK4LIFE إليكم.\n\
         السبب: {{reason}}\n\n\
         المبلغ محفوظ لكم. الخطوة التالية: اتصلوا بمكتب WORK4LIFE أو زوروه لتصحيح بيانات الأداء، \
         وسنعيد التحويل بعد ذلك.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        FAILED,
        "en",
        "Your payment of {{amount}} did not go through",
        "Hello {{given_name}},\n\n\
         The WORK4LIFE payment of {{amount}} did not go through.\n\
         Reason: {{reason}}\n\n\
         Your money is not lost. Next step: call or visit your WORK4LIFE office to fix your payment details; \
         we will then send the payment again.\n\n\
         The WORK4LIFE team",
    ),
    // A coaching session booked.
    sms(
        SCHEDULED,
        "fr",
        "Bonjour {{given_name}}, séance de coaching WORK4LIFE le {{start}}. Lieu : {{place}}. Absent(e) ? Prévenez votre coach.",
    ),
    sms(
        SCHEDULED,
        "ar",
        "مرحبا {{given_name}}، موعد جلسة المواكبة في WORK4LIFE يوم {{start}}. المكان: {{place}}. في حال الغياب، أخبروا مؤطركم.",
    ),
    sms(
        SCHEDULED,
        "en",
        "Hello {{given_name}}, your WORK4LIFE coaching session is on {{start}}. Place: {{place}}. Can't come? Tell your coach.",
    ),
    email(
        SCHEDULED,
        "fr",
        "Séance de coaching le {{start}}",
        "Bonjour {{given_name}},\n\n\
         Votre séance de coaching WORK4LIFE est fixée.\n\
         Date : {{start}}\n\
         Lieu : {{place}}\n\n\
         Si vous ne pouvez pas venir, prévenez votre coach au plus tôt pour choisir une autre date.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        SCHEDULED,
        "ar",
        "جلسة المواكبة يوم {{start}}",
        "مرحبا {{given_name}}،\n\n\
         تم تحديد موعد جلسة المواكبة الخاصة بكم في برنامج WORK4LIFE.\n\
         الموعد: {{start}}\n\
         المكان: {{place}}\n\n\
         إذا تعذر عليكم الحضور، أخبروا مؤطركم في أقرب وقت لتحديد موعد آخر.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        SCHEDULED,
        "en",
        "Coaching session on {{start}}",
        "Hello {{given_name}},\n\n\
         Your WORK4LIFE coaching session is booked.\n\
         When: {{start}}\n\
         Where: {{place}}\n\n\
         If you cannot come, tell your coach as soon as possible to choose another date.\n\n\
         The WORK4LIFE team",
    ),
    // A coaching session moved.
    sms(
        RESCHEDULED,
        "fr",
        "{{given_name}}, votre séance WORK4LIFE est déplacée au {{start}}. Lieu : {{place}}. Absent(e) ? Prévenez votre coach.",
    ),
    sms(
        RESCHEDULED,
        "ar",
        "مرحبا {{given_name}}، تم تغيير موعد جلسة المواكبة في WORK4LIFE إلى يوم {{start}}. المكان: {{place}}. في حال الغياب، أخبروا مؤطركم.",
    ),
    sms(
        RESCHEDULED,
        "en",
        "{{given_name}}, your WORK4LIFE coaching session has moved to {{start}}. Place: {{place}}. Can't come? Tell your coach.",
    ),
    email(
        RESCHEDULED,
        "fr",
        "Nouvelle date de séance : {{start}}",
        "Bonjour {{given_name}},\n\n\
         Votre séance de coaching WORK4LIFE change de date.\n\
         Nouvelle date : {{start}}\n\
         Lieu : {{place}}\n\n\
         Elle remplace la date précédente. Si vous ne pouvez pas venir, prévenez votre coach au plus tôt.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        RESCHEDULED,
        "ar",
        "موعد جديد لجلسة المواكبة: {{start}}",
        "مرحبا {{given_name}}،\n\n\
         تم تغيير موعد جلسة المواكبة الخاصة بكم في برنامج WORK4LIFE.\n\
         الموعد الجديد: {{start}}\n\
         المكان: {{place}}\n\n\
         هذا الموعد يعوض الموعد السابق. إذا تعذر عليكم الحضور، أخبروا مؤطركم في أقرب وقت.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        RESCHEDULED,
        "en",
        "New date for your coaching session: {{start}}",
        "Hello {{given_name}},\n\n\
         Your WORK4LIFE coaching session has moved.\n\
         New date: {{start}}\n\
         Where: {{place}}\n\n\
         It replaces the previous date. If you cannot come, tell your coach as soon as possible.\n\n\
         The WORK4LIFE team",
    ),
    // The reminder before a session.
    sms(
        REMINDER,
        "fr",
        "Rappel {{given_name}} : séance de coaching WORK4LIFE le {{start}}. Lieu : {{place}}. Absent(e) ? Prévenez votre coach.",
    ),
    sms(
        REMINDER,
        "ar",
        "تذكير من WORK4LIFE: {{given_name}}، لديكم جلسة مواكبة يوم {{start}}. المكان: {{place}}. في حال الغياب، أخبروا مؤطركم.",
    ),
    sms(REMINDER, "en", "Reminder {{given_name}}: WORK4LIFE coaching session on {{start}}. Place: {{place}}. Can't come? Tell your coach."),
    email(
        REMINDER,
        "fr",
        "Rappel : séance de coaching le {{start}}",
        "Bonjour {{given_name}},\n\n\
         Petit rappel de votre séance de coaching WORK4LIFE.\n\
         Date : {{start}}\n\
         Lieu : {{place}}\n\n\
         Si vous ne pouvez pas venir, prévenez votre coach au plus tôt.\n\n\
         À bientôt !\n\
         L'équipe WORK4LIFE",
    ),
    email(
        REMINDER,
        "ar",
        "تذكير: جلسة المواكبة يوم {{start}}",
        "مرحبا {{given_name}}،\n\n\
         نذكركم بجلسة المواكبة الخاصة بكم في برنامج WORK4LIFE.\n\
         الموعد: {{start}}\n\
         المكان: {{place}}\n\n\
         إذا تعذر عليكم الحضور، أخبروا مؤطركم في أقرب وقت.\n\n\
         نراكم قريبا!\n\
         فريق WORK4LIFE",
    ),
    email(
        REMINDER,
        "en",
        "Reminder: coaching session on {{start}}",
        "Hello {{given_name}},\n\n\
         A reminder of your WORK4LIFE coaching session.\n\
         When: {{start}}\n\
         Where: {{place}}\n\n\
         If you cannot come, tell your coach as soon as possible.\n\n\
         See you soon!\n\
         The WORK4LIFE team",
    ),
    whatsapp(
        REMINDER,
        "fr",
        "w4l_session_reminder_v1",
        "Bonjour {{given_name}}, petit rappel de votre séance de coaching WORK4LIFE.\n\
         Date : {{start}}\n\
         Lieu : {{place}}\n\
         Si vous ne pouvez pas venir, prévenez votre coach au plus tôt. À bientôt !",
    ),
    whatsapp(
        REMINDER,
        "ar",
        "w4l_session_reminder_v1",
        "مرحبا {{given_name}}، نذكركم بجلسة المواكبة الخاصة بكم في WORK4LIFE.\n\
         الموعد: {{start}}\n\
         المكان: {{place}}\n\
         إذا تعذر عليكم الحضور، أخبروا مؤطركم في أقرب وقت. نراكم قريبا!",
    ),
    whatsapp(
        REMINDER,
        "en",
        "w4l_session_reminder_v1",
        "Hello {{given_name}}, a reminder of your WORK4LIFE coaching session.\n\
         When: {{start}}\n\
         Where: {{place}}\n\
         If you cannot come, tell your coach as soon as possible. See you soon!",
    ),
    // A session cancelled: do not come, a new date will be offered.
    sms(
        CANCELLED,
        "fr",
        "Bonjour {{given_name}}, votre séance de coaching WORK4LIFE du {{start}} est annulée. Motif : {{reason}}. \
         Inutile de vous déplacer : votre coach vous proposera une nouvelle date.",
    ),
    sms(
        CANCELLED,
        "ar",
        "مرحبا {{given_name}}، تم إلغاء جلسة المواكبة في WORK4LIFE المقررة يوم {{start}}. السبب: {{reason}}. سيقترح عليكم مؤطركم موعدا جديدا.",
    ),
    sms(
        CANCELLED,
        "en",
        "Hello {{given_name}}, your WORK4LIFE coaching session on {{start}} is cancelled. Reason: {{reason}}. \
         No need to come: your coach will offer you a new date.",
    ),
    email(
        CANCELLED,
        "fr",
        "Séance du {{start}} annulée",
        "Bonjour {{given_name}},\n\n\
         Votre séance de coaching WORK4LIFE du {{start}} est annulée.\n\
         Motif : {{reason}}\n\n\
         Inutile de vous déplacer. Votre coach vous contactera pour vous proposer une nouvelle date.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        CANCELLED,
        "ar",
        "إلغاء جلسة المواكبة يوم {{start}}",
        "مرحبا {{given_name}}،\n\n\
         تم إلغاء جلسة المواكبة الخاصة بكم في برنامج WORK4LIFE المقررة يوم {{start}}.\n\
         السبب: {{reason}}\n\n\
         لا داعي للتنقل. سيتصل بكم مؤطركم لاقتراح موعد جديد.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        CANCELLED,
        "en",
        "Session on {{start}} cancelled",
        "Hello {{given_name}},\n\n\
         Your WORK4LIFE coaching session on {{start}} is cancelled.\n\
         Reason: {{reason}}\n\n\
         No need to come. Your coach will contact you to offer a new date.\n\n\
         The WORK4LIFE team",
    ),
    whatsapp(
        CANCELLED,
        "fr",
        "w4l_session_cancelled_v1",
        "Bonjour {{given_name}}, votre séance de coaching WORK4LIFE du {{start}} est annulée.\n\
         Motif : {{reason}}\n\
         Inutile de vous déplacer : votre coach vous proposera une nouvelle date.",
    ),
    whatsapp(
        CANCELLED,
        "ar",
        "w4l_session_cancelled_v1",
        "مرحبا {{given_name}}، تم إلغاء جلسة المواكبة في WORK4LIFE المقررة يوم {{start}}.\n\
         السبب: {{reason}}\n\
         لا داعي للتنقل: سيقترح عليكم مؤطركم موعدا جديدا.",
    ),
    whatsapp(
        CANCELLED,
        "en",
        "w4l_session_cancelled_v1",
        "Hello {{given_name}}, your WORK4LIFE coaching session on {{start}} is cancelled.\n\
         Reason: {{reason}}\n\
         No need to come: your coach will offer you a new date.",
    ),
    // A milestone verified by the coach: a tranche may follow.
    sms(
        MILESTONE,
        "fr",
        "Bravo {{given_name}} ! Votre coach WORK4LIFE a validé l'étape {{milestone}}. \
         Si une tranche de votre aide en dépend, nous vous préviendrons de son déblocage.",
    ),
    sms(
        MILESTONE,
        "ar",
        "أحسنتم {{given_name}}! صادق مؤطركم في WORK4LIFE على المرحلة {{milestone}}. إذا كانت دفعة من دعمكم مرتبطة بها، سنخبركم عند صرفها.",
    ),
    sms(
        MILESTONE,
        "en",
        "Well done {{given_name}}! Your WORK4LIFE coach has verified the step {{milestone}}. \
         If a grant instalment depends on it, we will tell you when it is released.",
    ),
    email(
        MILESTONE,
        "fr",
        "Étape {{milestone}} validée",
        "Bonjour {{given_name}},\n\n\
         Bravo ! Votre coach WORK4LIFE a validé cette étape de votre projet : {{milestone}}.\n\n\
         Si une tranche de votre aide dépend de cette étape, elle sera débloquée et nous vous préviendrons. \
         Continuez avec votre coach vers l'étape suivante.\n\n\
         L'équipe WORK4LIFE",
    ),
    email(
        MILESTONE,
        "ar",
        "تم التحقق من المرحلة {{milestone}}",
        "مرحبا {{given_name}}،\n\n\
         أحسنتم! صادق مؤطركم في برنامج WORK4LIFE على هذه المرحلة من مشروعكم: {{milestone}}.\n\n\
         إذا كانت دفعة من دعمكم مرتبطة بهذه المرحلة، فستصبح جاهزة للصرف وسنخبركم بذلك. \
         واصلوا العمل مع مؤطركم نحو المرحلة القادمة.\n\n\
         فريق WORK4LIFE",
    ),
    email(
        MILESTONE,
        "en",
        "Step {{milestone}} verified",
        "Hello {{given_name}},\n\n\
         Well done! Your WORK4LIFE coach has verified this step of your project: {{milestone}}.\n\n\
         If an instalment of your grant depends on this step, it will be released and we will tell you. \
         Keep going with your coach towards the next step.\n\n\
         The WORK4LIFE team",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{Encoding, size};
    use crate::templates::{MESSAGE_TYPES, Template, variables};
    use std::collections::{BTreeMap, BTreeSet};

    const LOCALES: [&str; 3] = ["fr", "ar", "en"];
    const WHATSAPP_TYPES: [&str; 5] = [ACCEPTED, PAYABLE, PAID, REMINDER, CANCELLED];

    /// Long but realistic values (the place has an en dash: not GSM-7).
    fn long_values() -> BTreeMap<String, String> {
        let reason = "Toutes les places de l'appel sont prises";
        assert_eq!(reason.chars().count(), 40);
        values(&[
            ("given_name", "Marie-Christine"),
            ("amount", "125000.00 MAD"),
            ("reason", reason),
            ("start", "2027-04-07 10:00"),
            ("place", "Tanger – salle B"),
            ("reference", "A1B2C3D4"),
            ("milestone", "business_plan"),
            ("code", "123456"),
            ("minutes", "10"),
            ("tranche", "3"),
        ])
    }

    /// The same, in ASCII.
    fn ascii_values() -> BTreeMap<String, String> {
        let mut v = long_values();
        v.insert("place".into(), "Tanger - salle B".into());
        assert!(v.values().all(|s| s.is_ascii()));
        v
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn render(t: &SeedTemplate, text: &str, values: &BTreeMap<String, String>) -> String {
        Template::parse(t.message_type, text)
            .and_then(|p| p.render(values).map_err(|reason| crate::templates::TemplateError { at: 0, reason }))
            .unwrap_or_else(|e| panic!("{} {} {}: {} at {}", t.message_type, t.channel, t.locale, e.reason, e.at))
    }

    fn smses() -> impl Iterator<Item = &'static SeedTemplate> {
        SEED_TEMPLATES.iter().filter(|t| t.channel == "sms")
    }

    #[test]
    fn every_subject_and_body_parses_with_the_types_variables() {
        for t in SEED_TEMPLATES {
            let at = format!("{} {} {}", t.message_type, t.channel, t.locale);
            assert!(MESSAGE_TYPES.contains(&t.message_type), "{at}: unknown message type");
            assert!(["sms", "email", "whatsapp"].contains(&t.channel), "{at}: unknown channel");
            assert!(LOCALES.contains(&t.locale), "{at}: unknown locale");
            Template::parse(t.message_type, t.body).unwrap_or_else(|e| panic!("{at}: body: {} at {}", e.reason, e.at));
            if t.channel == "email" {
                Template::parse(t.message_type, t.subject).unwrap_or_else(|e| panic!("{at}: subject: {} at {}", e.reason, e.at));
                assert!(!t.subject.contains('\n'), "{at}: a subject is one line");
            } else {
                assert!(t.subject.is_empty(), "{at}: a subject is for email only");
            }
            if t.channel != "whatsapp" {
                assert!(t.provider_template.is_empty(), "{at}: a provider template is for WhatsApp only");
            }
            assert!(t.body.contains("WORK4LIFE"), "{at}: the program is named");
        }
    }

    #[test]
    fn every_type_channel_and_locale_is_there_exactly_once() {
        let mut seen = BTreeSet::new();
        for t in SEED_TEMPLATES {
            assert!(seen.insert((t.message_type, t.channel, t.locale)), "{} {} {} twice", t.message_type, t.channel, t.locale);
        }
        for mt in MESSAGE_TYPES {
            for locale in LOCALES {
                for channel in ["sms", "email"] {
                    assert!(seen.contains(&(*mt, channel, locale)), "{mt} {channel} {locale} missing");
                }
                assert_eq!(seen.contains(&(*mt, "whatsapp", locale)), WHATSAPP_TYPES.contains(mt), "{mt} whatsapp {locale}");
            }
        }
        assert_eq!(SEED_TEMPLATES.len(), 15 * 2 * 3 + 5 * 3);
    }

    #[test]
    fn whatsapp_templates_name_their_approved_template() {
        for t in SEED_TEMPLATES.iter().filter(|t| t.channel == "whatsapp") {
            let name = t.provider_template;
            let valid = name.strip_prefix("w4l_").and_then(|rest| rest.rsplit_once("_v")).is_some_and(|(stem, version)| {
                !stem.is_empty()
                    && stem.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && !version.is_empty()
                    && version.chars().all(|c| c.is_ascii_digit())
            });
            assert!(valid, "{} {}: `{name}` is not w4l_<name>_v<n>", t.message_type, t.locale);
        }
        // One approved template per type, in every locale.
        for mt in WHATSAPP_TYPES {
            let names: BTreeSet<&str> =
                SEED_TEMPLATES.iter().filter(|t| t.channel == "whatsapp" && t.message_type == mt).map(|t| t.provider_template).collect();
            assert_eq!(names.len(), 1, "{mt}: {names:?}");
        }
    }

    #[test]
    fn the_one_time_code_says_only_the_code_and_its_validity() {
        for t in SEED_TEMPLATES.iter().filter(|t| t.message_type == OTP) {
            let mut used = Template::parse(OTP, t.body).expect("parses").uses().into_iter().map(String::from).collect::<Vec<_>>();
            used.sort();
            assert_eq!(used, ["code", "minutes"], "{} {}", t.channel, t.locale);
        }
    }

    #[test]
    fn every_text_uses_only_plain_unicode() {
        for t in SEED_TEMPLATES {
            for text in [t.subject, t.body] {
                let odd = text.chars().find(|c| {
                    (c.is_control() && *c != '\n')
                        || ('\u{200B}'..='\u{200F}').contains(c)
                        || ('\u{202A}'..='\u{202E}').contains(c)
                        || ('\u{2066}'..='\u{2069}').contains(c)
                        || *c == '\u{FEFF}'
                });
                assert_eq!(odd, None, "{} {} {}: a control character", t.message_type, t.channel, t.locale);
                assert!(!text.contains("  ") && text.trim() == text, "{} {} {}: stray spaces", t.message_type, t.channel, t.locale);
            }
            let arabic = t.body.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c));
            assert_eq!(arabic, t.locale == "ar", "{} {} {}: the script follows the locale", t.message_type, t.channel, t.locale);
        }
    }

    #[test]
    fn sms_bodies_fit_their_segment_budget_with_long_values() {
        let values = long_values();
        let mut over = Vec::new();
        let mut table = String::from("message type                    fr      ar      en\n");
        for mt in MESSAGE_TYPES {
            table.push_str(&format!("{mt:<31}"));
            for locale in LOCALES {
                let t = smses().find(|t| t.message_type == *mt && t.locale == locale).expect("there");
                let text = render(t, t.body, &values);
                let s = size(&text);
                let budget = if locale == "ar" { 3 } else { 2 };
                if s.segments > budget {
                    over.push(format!("{mt} {locale}: {} segments ({} units, {:?}): {text}", s.segments, s.units, s.encoding));
                }
                let enc = if s.encoding == Encoding::Gsm7 { "g" } else { "u" };
                table.push_str(&format!(" {}{enc}/{:<4}", s.segments, s.units));
            }
            table.push('\n');
        }
        // Shown with `-- --nocapture`: segments, g(sm-7) or u(cs-2), units.
        println!("{table}");
        assert!(over.is_empty(), "over budget:\n{}", over.join("\n"));
    }

    #[test]
    fn french_and_english_sms_are_gsm7_with_ascii_values() {
        let values = ascii_values();
        for t in smses().filter(|t| t.locale != "ar") {
            let text = render(t, t.body, &values);
            let s = size(&text);
            let odd: String = text.chars().filter(|c| size(&c.to_string()).encoding == Encoding::Ucs2).collect();
            assert_eq!(s.encoding, Encoding::Gsm7, "{} {}: not GSM-7 because of {odd:?}", t.message_type, t.locale);
            assert!(s.segments <= 2, "{} {}: {} segments", t.message_type, t.locale, s.segments);
        }
    }

    #[test]
    fn every_variable_a_body_needs_has_a_value() {
        let values = long_values();
        for mt in MESSAGE_TYPES {
            for (name, _) in variables(mt).expect("known type") {
                assert!(values.contains_key(*name), "{mt}: no test value for {name}");
            }
        }
    }
}
