"""The Northwind playbook the scoring tests pin their expectations to (no tests here).

A frozen copy of the semiconductor example as the engine was specified against, so that tuning the
bundled `playbooks/semiconductor.yaml` for the demo never changes what these tests prove.
"""

NORTHWIND_YAML = r"""
# Scoring playbook of Northwind Semiconductor: automotive PMICs and industrial SiC gate drivers.
#
# Reviewed by revenue operations with sales every month. Every rule's `why` is shown to reps next to
# the points it gave, so write it for them. Scales: contact fit, account fit, contact intent and
# account intent each run 0–100; the blend below turns them into the 0–100 lead score.
name: Northwind Semiconductor — power and gate drivers
description: >
  Fit and intent model for automotive power management (PMIC-77 family) and industrial motor control
  (GD-40 SiC gate drivers). Technical evaluation drives readiness: requests beat downloads, downloads
  beat page views, and firmographics alone never make a lead sales-ready.

# Named lists that conditions refer to with `in_list`.
lists:
  personal_email_domains: [gmail.com, googlemail.com, yahoo.com, hotmail.com, outlook.com, icloud.com,
                           gmx.de, web.de, qq.com, 163.com, proton.me]
  competitor_domains: [vortexsemi.com, helion-power.com, arcwave-ic.com]

# The evaluation journey, in order. The furthest stage reached is written to the scorecard.
stages: [learn, evaluate, validate, buy]

# ---------------------------------------------------------------------------------------------
# Fit: one ideal-customer profile per product line. A person is scored under every profile whose
# `applies_when` holds for their account; the best-fitting one is kept and named.
profiles:
  - id: automotive_power
    name: Automotive power management
    why: PMIC-77 wins where tier-1s and EV makers design AEC-Q100 power trees for BMS and ADAS.
    segments: [automotive]
    applies_when:
      - field: account.industry
        in: [Automotive, Automotive Electronics, Electric Vehicles, Transportation]
    fit:
      - id: auto_application
        field: account.application
        in: [BMS, ADAS, EV powertrain, Body electronics, Infotainment]
        points: 30
        why: The application is one PMIC-77 reference designs cover.
      - id: auto_device_type
        field: account.device_type
        in: [PMIC, DC-DC converter, LDO, Power stage]
        points: 15
        why: They buy the device types we sell.
      - id: auto_qualification
        field: account.process
        in: [AEC-Q100, IATF 16949]
        points: 10
        why: Their qualification flow accepts our AEC-Q100 grade-1 parts.
      - id: auto_package
        field: account.package
        in: [QFN, WLCSP, HTSSOP]
        points: 5
        why: Their assembly lines take our packages without new tooling.
      - id: auto_region
        field: account.region
        in: [EMEA, APAC, Americas]
        points: 5
        why: Covered by a field application engineer.
      - id: auto_size
        field: account.employees
        why: Larger programs carry higher volumes; size only counts next to technical fit.
        bands:
          - {max: 50, points: 0, label: "under 50"}
          - {min: 50, max: 500, points: 5, label: "50–500"}
          - {min: 500, max: 5000, points: 10, label: "500–5,000"}
          - {min: 5000, points: 15, label: "5,000+"}
      - id: auto_customer
        field: account.customer_type
        in: [customer]
        points: 10
        why: Existing customers design in new parts faster.

  - id: industrial_motor_control
    name: Industrial motor control
    why: GD-40 gate drivers fit inverter and servo designs moving to SiC.
    segments: [industrial]
    applies_when:
      - field: account.industry
        in: [Industrial Automation, Robotics, Motor Drives, HVAC, Energy, Industrial Machinery]
    fit:
      - id: motor_application
        field: account.application
        in: [Servo drives, Motor drives, Robotics, Solar inverters, HVAC compressors]
        points: 30
        why: The application is an inverter stage GD-40 is designed for.
      - id: motor_device_type
        field: account.device_type
        in: [Gate driver, SiC MOSFET, IGBT module, Inverter]
        points: 15
        why: They design with power switches our drivers control.
      - id: motor_standards
        field: account.process
        in: [IEC 61800, UL 508C, IEC 60747]
        points: 10
        why: Their certification path matches our isolation ratings.
      - id: motor_package
        field: account.package
        in: [SOIC-16W, QFN, LGA]
        points: 5
        why: Our wide-body and QFN packages drop into their boards.
      - id: motor_region
        field: account.region
        in: [EMEA, APAC, Americas]
        points: 5
        why: Covered by a field application engineer.
      - id: motor_size
        field: account.employees
        why: Larger drive makers ship volume; size only counts next to technical fit.
        bands:
          - {max: 100, points: 0, label: "under 100"}
          - {min: 100, max: 1000, points: 5, label: "100–1,000"}
          - {min: 1000, points: 12, label: "1,000+"}
      - id: motor_customer
        field: account.customer_type
        in: [customer]
        points: 10
        why: Existing customers design in new parts faster.

# Person-level fit on top of the persona weight (role + seniority below).
contact_fit:
  cap: 100
  why: Whether this person can sponsor an evaluation.
  rules:
    - id: technical_department
      field: person.department
      contains: [engineering, r&d, hardware, power, design]
      points: 10
      why: Sits in the team that runs evaluations.
    - id: covered_country
      field: person.country
      in: [Germany, United States, Japan, China, South Korea, France, Italy, Sweden, Taiwan, Mexico]
      points: 5
      why: In a country with FAE coverage and distribution.

# Persona taxonomy: messy titles → role and seniority. Patterns match the normalized title
# (lower case, punctuation as spaces: "Sr. HW Eng." → "sr hw eng"). The first role that matches
# wins, so functional roles come before the executive catch-all ("VP Supply Chain" → procurement).
personas:
  why: Buying committees mix engineering, product management, quality and procurement.
  unknown_role: other
  unknown_role_weight: 5
  roles:
    - role: student
      weight: 0
      why: Students and interns research but do not buy.
      patterns: ['\bstudent\b', '\bintern(ship)?\b', '\bphd candidate\b', '\bundergrad',
                 '\bteaching assistant\b']
    - role: procurement
      weight: 20
      why: Procurement joins once timelines and pricing come up.
      patterns: ['\bbuyer\b', '\bpurchas', '\bprocurement\b', '\bsourcing\b', '\bsupply chain\b',
                 '\bcommodity\b']
    - role: quality
      weight: 20
      why: Quality signs off qualification (PPAP, AEC-Q100 data).
      patterns: ['\bquality\b', '\bqa\b', '\bsqe\b', '\breliability\b', '\bcompliance\b']
    - role: product_management
      weight: 30
      why: Product managers own the bill of materials and the roadmap.
      patterns: ['\bproduct (manager|management|line|marketing|owner)\b', '\bpm\b', '\bprogram manager\b']
    - role: engineering
      weight: 35
      why: Engineers download app notes, request EVKs and make the design-in decision.
      patterns: ['\beng\b', '\bengr?\b', '\bengineer', '\bdesigner\b', '\barchitect\b', '\bfae\b',
                 '\bhw\b', '\bhardware\b', '\bfirmware\b', '\br d\b', '\bscientist\b', '\btechnical lead\b']
    - role: executive
      weight: 25
      why: Executives approve programs; they rarely start evaluations.
      patterns: ['\bceo\b', '\bcto\b', '\bcoo\b', '\bchief\b', '\bpresident\b', '\bfounder\b',
                 '\bgeneral manager\b', '\bvp\b', '\bvice president\b', '\bmanaging director\b']
  default_seniority: individual_contributor
  seniority:
    - level: executive
      weight: 15
      patterns: ['\b(ceo|cto|coo|cfo|chief|president|founder|vp|svp|evp|vice president|general manager)\b',
                 '\bmanaging director\b']
    - level: director
      weight: 12
      patterns: ['\bdirector\b', '\bhead of\b']
    - level: senior
      weight: 8
      patterns: ['\b(sr|senior|principal|staff|lead|distinguished|fellow)\b']
    - level: manager
      weight: 6
      patterns: ['\b(manager|mgr|supervisor)\b']

# ---------------------------------------------------------------------------------------------
# Asset catalog: how activities are recognized. First matching asset wins.
assets:
  - id: evk_7710
    name: EVK-7710 evaluation kit
    type: evaluation_kit
    product_family: PMIC-77
    segment: automotive
    stage: validate
    match:
      urls: ['/evk/evk-7710', '/pmic77/evaluation-kit']
      forms: ['evk-7710', 'pmic-77 evaluation kit']
  - id: pmic77_samples
    name: PMIC-77 samples
    type: sample
    product_family: PMIC-77
    segment: automotive
    stage: validate
    match:
      forms: ['pmic-?77.*sample', 'sample request.*pmic']
      urls: ['/pmic77/samples']
  - id: gd40_evk
    name: EVK-GD40 half-bridge evaluation board
    type: evaluation_kit
    product_family: GD-40
    segment: industrial
    stage: validate
    match:
      urls: ['/evk/evk-gd40', '/gd40/evaluation-board']
      forms: ['evk-gd40', 'gd-?40 evaluation']
  - id: gd40_samples
    name: GD-40 samples
    type: sample
    product_family: GD-40
    segment: industrial
    stage: validate
    match:
      forms: ['gd-?40.*sample', 'sample request.*gd']
      urls: ['/gd40/samples']
  - id: rd_4812
    name: RD-4812 48V-to-12V automotive reference design
    type: reference_design
    product_family: PMIC-77
    segment: automotive
    stage: evaluate
    match:
      urls: ['/reference-designs/rd-4812']
      forms: ['rd-4812']
  - id: rd_inverter
    name: RD-SIC3 three-phase SiC inverter reference design
    type: reference_design
    product_family: GD-40
    segment: industrial
    stage: evaluate
    match:
      urls: ['/reference-designs/rd-sic3']
      forms: ['rd-sic3']
  - id: pmic77_datasheet
    name: PMIC-77 datasheet
    type: datasheet
    product_family: PMIC-77
    segment: automotive
    stage: evaluate
    match:
      urls: ['/docs/ds/pmic-?77']
  - id: gd40_datasheet
    name: GD-40 datasheet
    type: datasheet
    product_family: GD-40
    segment: industrial
    stage: evaluate
    match:
      urls: ['/docs/ds/gd-?40']
  - id: an_112
    name: AN-112 BMS power-tree design guide
    type: application_note
    product_family: PMIC-77
    segment: automotive
    stage: evaluate
    match:
      urls: ['/docs/an/an-112']
      forms: ['an-112']
  - id: an_230
    name: AN-230 driving SiC MOSFETs in motor inverters
    type: application_note
    product_family: GD-40
    segment: industrial
    stage: evaluate
    match:
      urls: ['/docs/an/an-230']
      forms: ['an-230']
  - id: webinar_asil
    name: "Webinar: ASIL-D power for ADAS domain controllers"
    type: webinar
    product_family: PMIC-77
    segment: automotive
    stage: learn
    match:
      campaigns: ['asil-d power', 'adas power webinar']
  - id: webinar_sic
    name: "Webinar: SiC gate-drive design pitfalls"
    type: webinar
    product_family: GD-40
    segment: industrial
    stage: learn
    match:
      campaigns: ['sic gate-drive', 'gate drive webinar']
  - id: webinar_roadmap
    name: "Webinar: Northwind 2027 product roadmap"
    type: brand_webinar
    stage: learn
    match:
      campaigns: ['roadmap webinar', 'northwind live']
  - id: workshop_inverter
    name: "Hands-on workshop: SiC motor inverter design"
    type: workshop
    product_family: GD-40
    segment: industrial
    stage: evaluate
    match:
      campaigns: ['inverter workshop', 'sic design workshop']
  - id: workshop_bms
    name: "Hands-on workshop: automotive BMS power tree"
    type: workshop
    product_family: PMIC-77
    segment: automotive
    stage: evaluate
    match:
      campaigns: ['bms workshop']
  - id: electronica_booth
    name: electronica 2026 booth
    type: trade_show
    stage: learn
    match:
      campaigns: ['electronica']
  - id: pcim_booth
    name: PCIM Europe booth
    type: trade_show
    segment: industrial
    stage: learn
    match:
      campaigns: ['pcim']
  - id: distributor_referral
    name: distributor referral program
    type: referral
    stage: evaluate
    match:
      campaigns: ['distributor referral', 'partner referral']
  - id: pricing_page
    name: pricing and availability page
    type: pricing_page
    stage: buy
    match:
      urls: ['/pricing', '/buy', '/availability']
  - id: contact_sales_form
    name: contact-sales form
    type: sales_contact
    stage: buy
    match:
      forms: ['contact sales', 'talk to an expert', 'request a quote', 'demo request']
      urls: ['/contact-sales', '/request-demo']
  - id: auto_application_pages
    name: automotive application pages
    type: application_page
    segment: automotive
    stage: learn
    match:
      urls: ['/applications/automotive']
  - id: industrial_application_pages
    name: motor-control application pages
    type: application_page
    segment: industrial
    stage: learn
    match:
      urls: ['/applications/(industrial|motor-control)']
  - id: product_pages
    name: product pages
    type: product_page
    stage: learn
    match:
      urls: ['/products/']
  - id: newsletter
    name: monthly engineering newsletter
    type: newsletter
    stage: learn
    match:
      campaigns: ['newsletter']

# ---------------------------------------------------------------------------------------------
# Intent: points per activity. The first rule whose kinds (and asset types/stages) match an
# activity counts it. Points decay with a half-life (rule, else group, else default); caps keep
# any one habit from dominating; frequency caps stop page-view volume from adding up.
intent:
  cap: 100
  default_half_life_days: 45
  max_age_days: 365
  relevance:
    bonus_percent: 25
    why: Engagement with the segment of their best profile says more than any content at all.
  groups:
    - id: requests
      name: requests
      why: Requests show an active evaluation and are worth more than downloads.
      cap: 60
      half_life_days: 60
    - id: downloads
      name: technical downloads
      why: Gated technical content shows research with a purpose.
      cap: 35
      half_life_days: 45
    - id: events
      name: event points
      why: Webinars, workshops and booth scans show interest; narrow topics more than broad ones.
      cap: 30
      half_life_days: 90
    - id: web
      name: web visit points
      why: Visits are noisy one by one; volume alone never makes a lead ready.
      cap: 20
      half_life_days: 21
    - id: email
      name: email points
      why: Clicks show some interest; opens show almost none.
      cap: 8
      half_life_days: 14
  rules:
    - id: evk_request
      name: evaluation-kit requests
      kinds: [eval_kit_request]
      points: 30
      group: requests
      stage: validate
      says: requested the {asset}
      why: An evaluation kit means a design is being evaluated now.
    - id: sample_request
      name: sample requests
      kinds: [sample_request]
      points: 28
      group: requests
      stage: validate
      says: requested {asset}
      why: Samples go onto prototype boards; validation is under way.
    - id: sales_request
      name: demo and contact-sales requests
      kinds: [demo_request, contact_sales]
      points: 25
      group: requests
      stage: buy
      says: asked to talk to sales ({asset})
      why: They asked for a conversation.
    - id: reference_design_download
      name: reference-design downloads
      kinds: [asset_download, form_fill]
      asset_types: [reference_design]
      points: 15
      group: downloads
      cap: 30
      says: downloaded the {asset}
      why: Reference designs are copied into real schematics.
    - id: technical_download
      name: datasheet and app-note downloads
      kinds: [asset_download, form_fill]
      asset_types: [datasheet, application_note]
      points: 10
      group: downloads
      frequency: {max_count: 3, window_days: 30}
      says: downloaded the {asset}
      why: Datasheets and app notes are read when parts are being compared.
    - id: technical_webinar
      name: technical webinar attendance
      kinds: [webinar_attended]
      asset_types: [webinar]
      points: 12
      group: events
      says: attended the {asset}
      why: A narrow technical session signals a concrete design question.
    - id: brand_webinar
      name: broad webinar attendance
      kinds: [webinar_attended]
      asset_types: [brand_webinar]
      points: 4
      group: events
      says: attended the {asset}
      why: Broad sessions show awareness, not a project.
    - id: webinar_registration
      name: webinar registrations
      kinds: [webinar_registered]
      points: 3
      group: events
      frequency: {max_count: 2, window_days: 30}
      says: registered for the {asset}
      why: Registering is intent to learn; attending counts more.
    - id: workshop
      name: workshop attendance
      kinds: [workshop_attended]
      points: 15
      group: events
      says: attended the {asset}
      why: A hands-on workshop takes a day of an engineer's time.
    - id: booth_scan
      name: trade-show booth scans
      kinds: [trade_show_scan]
      points: 6
      group: events
      says: was scanned at the {asset}
      why: A booth conversation, often with a specific question.
    - id: partner_referral
      name: distributor referrals
      kinds: [partner_referral]
      points: 15
      group: requests
      says: was referred through the {asset}
      why: A distributor FAE saw a real opportunity.
    - id: pricing_visit
      name: pricing-page visits
      kinds: [page_view]
      asset_types: [pricing_page]
      points: 8
      group: web
      frequency: {max_count: 1, window_days: 7}
      says: looked at the {asset}
      why: Pricing and availability questions come late in an evaluation.
    - id: application_visit
      name: application-page visits
      kinds: [page_view]
      asset_types: [application_page]
      points: 2
      group: web
      frequency: {max_count: 5, window_days: 30}
      says: visited {asset}
      why: Application pages are where engineers start matching parts to a design.
    - id: technical_page_visit
      name: technical page visits
      kinds: [page_view]
      asset_types: [datasheet, application_note, reference_design, product_page]
      points: 1
      group: web
      frequency: {max_count: 5, window_days: 30}
      says: visited {asset}
      why: Reading product and documentation pages.
    - id: email_click
      name: email clicks
      kinds: [email_click]
      points: 2
      group: email
      frequency: {max_count: 3, window_days: 30}
      says: clicked through {asset}
      why: A click shows interest in the topic.
    - id: email_open
      name: email opens
      kinds: [email_open]
      points: 0.5
      group: email
      frequency: {max_count: 4, window_days: 30}
      says: opened {asset}
      why: Opens are weak (privacy proxies open mail too) and stay near zero.
  depth:
    - id: repeat_application_visits
      name: repeat application-page visits
      asset_types: [application_page]
      relevant_only: true
      min_visits: 3
      window_days: 30
      points: 8
      group: web
      says: came back to application pages of their segment {count} times in {window} days
      why: Repeat visits to the same application show a design in progress.
    - id: long_technical_reads
      name: time on technical pages
      asset_types: [datasheet, application_note, reference_design, product_page]
      min_seconds: 900
      window_days: 30
      points: 6
      group: web
      says: spent {count} minutes on technical pages in {window} days
      why: Fifteen minutes on datasheets is reading, not browsing.

# ---------------------------------------------------------------------------------------------
# Negative signals lower fit or intent; disqualifiers are hard stops.
negatives:
  - id: unsubscribed
    kinds: [unsubscribe]
    within_days: 365
    points: -15
    target: intent
    says: unsubscribed from marketing email
    why: They asked for less contact; do not push them.
  - id: email_bounces
    when:
      - {field: person.bounced, equals: true}
    points: -10
    target: fit
    says: email address hard-bounces
    why: We cannot reach them by email; the record may be stale.
  - id: personal_email
    when:
      - {field: person.email_domain, in_list: personal_email_domains}
    points: -15
    target: fit
    says: uses a personal email address
    why: Often hobbyists or job seekers; confirm the company first.
  - id: misaligned_application
    when:
      - {field: account.application, in: [Toys, Crypto mining, Consumer audio, Vaping devices]}
    points: -20
    target: fit
    says: works on an application we do not serve
    why: Our parts are not qualified or priced for these applications.

disqualifiers:
  - id: student
    when:
      - {field: person.role, in: [student]}
    says: is a student
    why: Students get university-program support, not sales follow-up.
  - id: competitor_account
    when:
      - {field: account.customer_type, in: [competitor]}
    says: works at a competitor
    why: Competitors research our parts; never route them to sales.
  - id: competitor_domain
    when:
      - {field: person.email_domain, in_list: competitor_domains}
    says: uses a competitor's email domain
    why: Competitors research our parts; never route them to sales.
  - id: partner_owned
    when:
      - {field: person.partner_owned, equals: true}
    says: is owned by a channel partner
    why: Registered to a distributor; the partner follows up, not our reps.

# A single high-value action can make a lead ready without a long history.
escalations:
  - id: evaluation_request
    kinds: [eval_kit_request, sample_request]
    within_days: 30
    min_fit: 35
    sla: 4h
    why: An EVK or sample request from a fitting account must reach an FAE the same day.
  - id: sales_conversation
    kinds: [demo_request, contact_sales]
    within_days: 14
    min_fit: 25
    sla: 2h
    why: Someone asked to talk to us; answer within two hours.

# ---------------------------------------------------------------------------------------------
# Account-based scoring.
account:
  intent:
    decay_factor: 0.5
    max_people: 8
    cap: 100
    why: The most engaged person counts fully, the next half, then a quarter, and so on.
  committee:
    roles: [engineering, product_management, quality, procurement, executive]
    min_intent: 10
    points_per_role: 8
    cap: 30
    why: When engineering, quality and procurement all engage, a buying committee has formed.
  tiers:
    - name: Engaged account
      min_fit: 40
      min_intent: 40
    - name: Warming
      min_intent: 15
    - name: Cold

blend:
  contact_fit: 0.20
  account_fit: 0.25
  contact_intent: 0.40
  account_intent: 0.15
  static_cap: 35
  why: >
    Fit says who to care about, intent says when. At most 35 of the 100 points come from static
    fields, so a perfect-fit account with no engagement stays out of the top tier.

tiers:
  - name: Sales priority
    min_score: 55
    min_fit: 40
    min_intent: 25
    why: Route to the account owner now.
  - name: Nurture
    min_score: 25
    why: Technical nurture matched to their stage.
  - name: Unqualified for now
    why: Keep in general education; rescored as they engage.
disqualified_tier: Unqualified for now

grid:
  fit:
    - {label: A, min: 70}
    - {label: B, min: 50}
    - {label: C, min: 30}
    - {label: D, min: 0}
  intent:
    - {label: "1", min: 60}
    - {label: "2", min: 35}
    - {label: "3", min: 15}
    - {label: "4", min: 0}

"""
